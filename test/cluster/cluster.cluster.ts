import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { stringify } from "yaml";
import { ResolvedConfig } from "../../components/config/schema";
import { renderDrainScript } from "../../components/decommission/render";
import { renderDns } from "../../components/dns/render";
import { renderKeepKeysWrite } from "../../components/encryption/keep-keys";
import { renderEncryptionConfig, rotationPhases } from "../../components/encryption/render";
import { needsK3sCrd, renderAllObjects } from "../../components/kube/all";
import { KubeObject } from "../../components/kube/objects";
import { renderTenants } from "../../components/tenants/render";
import { ENVS, fixtureConfig, REPO, sampleConfig, variant } from "../helpers/samples";
import { ControlPlane, freePorts, K8S_VERSION, kubernetesBin } from "../../tools/harness/apiserver";
import { Issuer, startIssuer } from "../../tools/harness/oidc-issuer";
import { authenticationApiVersion } from "../../components/authentication/render";
import { PATHS } from "../../components/k3s/paths";
import { planNode } from "../../components/plan/node";
import { loadStackConfig } from "../../components/stack/load";
import { cliPreview, engineMissing, inClusterProgram, inlineStack } from "../../tools/harness/engine";
import { fixtureEventLog, isDebugDiagnostic, normalisePaths, secretMaterial } from "../../tools/harness/preview-output";

/**
 * `npm run test:cluster`: what the program renders, on a real API server (etcd + kube-apiserver
 * + kube-controller-manager on 127.0.0.1, started and stopped here), through the real Pulumi
 * engine and kubernetes provider. One control plane for the whole suite; it runs the prod
 * sample's custom EncryptionConfiguration, as a K3s server in custom mode would.
 */

const ENCRYPTION_TARGET = "/etc/rancher/k3s/encryption-config.yaml";
const KEY_A = { name: "secretbox-aaaaaaaa", secret: Buffer.alloc(32, 1).toString("base64") };
const KEY_B = { name: "secretbox-bbbbbbbb", secret: Buffer.alloc(32, 2).toString("base64") };

const toYaml = (objects: KubeObject[]) => objects.map((o) => stringify(o)).join("---\n");

/**
 * scripts/preview-fixtures.sh sets UPDATE_PREVIEW_FIXTURES=1: the real CLI's `preview --json
 * --event-log` output of (b) and (c) then replaces test/fixtures/preview/cluster-*.
 */
const FIXTURES = join(REPO, "test", "fixtures", "preview");
async function savePreview(name: string, run: Promise<{ status: number; json: string; events: string; stderr: string }>, wantStatus: number) {
  const r = await run;
  assert.equal(r.status, wantStatus, `preview ${name}: ${r.stderr.slice(-2000)}`);
  const digest = JSON.parse(r.json) as { steps?: unknown[] };
  assert.ok(digest, "a JSON digest");
  // The kubeconfig is a secret end to end: the digest shows it as [secret].
  assert.deepEqual(secretMaterial(r.json), [], `preview ${name}: the JSON digest shows a credential`);
  // The event log: only the SDK's debug trace may carry it (tools/harness/preview-output.ts);
  // any other event with a credential is a leak in the product.
  const events = r.events.split("\n").filter((l) => l.trim() !== "");
  assert.ok(events.length > 0, `preview ${name}: an event log`);
  const leaking = events.filter((l) => secretMaterial(l).length > 0 && !isDebugDiagnostic(l));
  assert.deepEqual(leaking.map((l) => l.slice(0, 200)), [], `preview ${name}: events other than the SDK's debug trace show a credential`);
  const fixture = { json: normalisePaths(r.json.endsWith("\n") ? r.json : `${r.json}\n`, REPO), events: fixtureEventLog(r.events, REPO) };
  assert.deepEqual(secretMaterial(fixture.json + fixture.events), []);
  if (process.env.UPDATE_PREVIEW_FIXTURES === "1") {
    writeFileSync(join(FIXTURES, `${name}.json`), fixture.json);
    writeFileSync(join(FIXTURES, `${name}.events.jsonl`), fixture.events);
  }
  return r;
}

describe("test:cluster — a real API server and the real engine", function () {
  this.timeout(600_000);
  const prod = sampleConfig("prod");
  const work = mkdtempSync(join(tmpdir(), "k3sp-cluster-test-"));
  const root = join(work, "root");
  let cp: ControlPlane;

  /** Writes the EncryptionConfiguration the way a server's secret-write step does (keep-keys). */
  const writeEncryptionConfig = (keys: Array<{ name: string; secret: string }>) => {
    const r = spawnSync("sh", ["-c", renderKeepKeysWrite(ENCRYPTION_TARGET, "0600")], {
      input: renderEncryptionConfig(prod.encryption, { secretbox: keys }),
      encoding: "utf8",
      env: { ...process.env, K3S_PLATFORM_ROOT: root },
    });
    assert.equal(r.status, 0, r.stderr);
  };

  let issuer: Issuer | undefined;
  /** The stack the OIDC part renders: dev, pinned to this API server's release, with the stand-in issuer (issue 27). */
  let oidcConfig: ResolvedConfig;

  before(async function () {
    const missing = engineMissing();
    if (missing) console.log(`test:cluster: the engine parts (b, c) need: ${missing}`);
    mkdirSync(root);
    writeEncryptionConfig([KEY_A]);
    // The servers' AuthenticationConfiguration as the program renders it for this release
    // (v1.31: apiserver.config.k8s.io/v1beta1), placed where apply.sh puts it.
    issuer = await startIssuer(work, (await freePorts(1))[0]!);
    oidcConfig = loadStackConfig(variant("dev", (r) => {
      r.k3s!.version = `${K8S_VERSION}+k3s1`;
      r.k3s!.apiServer = {
        authentication: {
          jwt: [{
            issuer: { url: issuer!.url, audiences: ["kubernetes", "kubectl"], certificateAuthority: issuer!.ca },
            claimMappings: { username: { claim: "email", prefix: "oidc:" }, groups: { claim: "groups", prefix: "oidc:" } },
            claimValidationRules: [{ claim: "hd", requiredValue: "example.com" }],
          }],
        },
      };
    }));
    const server = planNode(oidcConfig, oidcConfig.nodes[0]!);
    const authFile = server.files.find((f) => f.target === PATHS.authenticationConfig)!;
    mkdirSync(dirname(join(root, authFile.target!)), { recursive: true });
    writeFileSync(join(root, authFile.target!), authFile.content);
    // Assigned before up(), so after() stops (and removes) it even when starting fails.
    cp = new ControlPlane({ encryptionConfig: join(root, ENCRYPTION_TARGET), authenticationConfig: join(root, authFile.target!) });
    await cp.up();
  });
  after(async () => {
    issuer?.stop();
    await cp?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  describe("(f) OIDC through the rendered AuthenticationConfiguration (issue 27)", () => {
    /** `kubectl auth whoami` with only a bearer token (no client certificate to fall back on). */
    const whoami = (token: string) => {
      const kubeconfig = join(work, "oidc.kubeconfig");
      writeFileSync(kubeconfig, readFileSync(cp.kubeconfig, "utf8").replace(/users:[\s\S]*?contexts:/, `users:\n- name: admin\n  user:\n    token: ${token}\ncontexts:`));
      const r = spawnSync(join(kubernetesBin(), "kubectl"), [`--kubeconfig=${kubeconfig}`, "auth", "whoami", "-o", "json"], { encoding: "utf8" });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const claims = { aud: "kubectl", sub: "u-1", email: "alice@example.com", email_verified: true, groups: ["devs"], hd: "example.com" };

    it("the API server started with the file (it exits on one it refuses), of the apiVersion for its release", () => {
      const file = readFileSync(join(root, PATHS.authenticationConfig), "utf8");
      assert.match(file, new RegExp(`^apiVersion: ${authenticationApiVersion(oidcConfig.k3s).replace(/[./]/g, "\\$&")}$`, "m"));
      assert.equal(cp.kubectl(["get", "--raw=/readyz"]).status, 0);
    });

    it("an ID token of the provider logs in with the prefixed user and groups", async () => {
      // The authenticator fetches discovery and keys in the background after start: retry briefly.
      let last = whoami(issuer!.token(claims));
      for (let i = 0; i < 60 && last.status !== 0; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        last = whoami(issuer!.token(claims));
      }
      assert.equal(last.status, 0, last.stderr);
      const info = (JSON.parse(last.stdout) as { status: { userInfo: { username: string; groups: string[] } } }).status.userInfo;
      assert.equal(info.username, "oidc:alice@example.com");
      assert.ok(info.groups.includes("oidc:devs"), JSON.stringify(info.groups));
      assert.ok(info.groups.includes("system:authenticated"));
    });

    it("a token for another audience, or failing a claim rule, is refused", () => {
      assert.equal(whoami(issuer!.token(claims)).status, 0, "the provider is ready (previous test)");
      for (const bad of [{ ...claims, aud: "other-app" }, { ...claims, hd: "evil.example" }]) {
        const r = whoami(issuer!.token(bad));
        assert.notEqual(r.status, 0, JSON.stringify(bad));
        assert.match(r.stderr, /Unauthorized|must be logged in/i);
      }
    });
  });

  describe("(a) every rendered object of every sample stack is accepted (server-side apply, strict field validation)", () => {
    for (const env of ENVS) {
      it(`${env}`, () => {
        const config = sampleConfig(env);
        // Everything but K3s' own CRDs (HelmChartConfig), which this API server does not serve.
        const all = renderAllObjects(config);
        const objects = all.filter((o) => !needsK3sCrd(o));
        assert.deepEqual([...new Set(all.filter(needsK3sCrd).map((o) => o.kind))].filter((k) => k !== "HelmChartConfig"), []);
        assert.ok(objects.length > 0);
        // A Namespace inside a dry run is never created, so its objects would be refused: create them first.
        const namespaces = objects.filter((o) => o.kind === "Namespace");
        if (namespaces.length) {
          const ns = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(namespaces));
          assert.equal(ns.status, 0, ns.stderr);
        }
        const rest = objects.filter((o) => o.kind !== "Namespace");
        const r = cp.kubectl(["apply", "--server-side", "--dry-run=server", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(rest));
        assert.equal(r.status, 0, `${env}: refused:\n${r.stderr}`);
        assert.equal(r.stdout.trim().split("\n").length, rest.length, r.stdout);
        if (namespaces.length) {
          const del = cp.kubectl(["delete", "namespace", "--wait=true", "--timeout=180s", ...namespaces.map((n) => n.metadata.name)]);
          assert.equal(del.status, 0, del.stderr);
        }
      });
    }

    it("cilium (fixture sample, issue 27): the tenants' default-deny NetworkPolicies are accepted as with flannel", () => {
      // What the API server can show: the same policy objects, accepted. That they drop traffic
      // only a running CNI (Cilium here) shows: docs/networking.md "Tenants' default-deny policies".
      const config = fixtureConfig("cilium");
      const all = renderAllObjects(config);
      assert.deepEqual([...new Set(all.filter(needsK3sCrd).map((o) => o.kind))], ["HelmChart"], "only the Cilium HelmChart needs K3s' CRDs");
      const objects = all.filter((o) => !needsK3sCrd(o));
      const denies = objects.filter((o) => o.kind === "NetworkPolicy" && /deny/.test(o.metadata.name));
      assert.ok(denies.length >= 1, "default-deny policies are in the set");
      const namespaces = objects.filter((o) => o.kind === "Namespace");
      const ns = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(namespaces));
      assert.equal(ns.status, 0, ns.stderr);
      const rest = objects.filter((o) => o.kind !== "Namespace");
      const r = cp.kubectl(["apply", "--server-side", "--dry-run=server", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(rest));
      assert.equal(r.status, 0, `refused:\n${r.stderr}`);
      assert.equal(r.stdout.trim().split("\n").length, rest.length, r.stdout);
      const del = cp.kubectl(["delete", "namespace", "--wait=true", "--timeout=180s", ...namespaces.map((n) => n.metadata.name)]);
      assert.equal(del.status, 0, del.stderr);
    });

    it("dualstack (fixture sample): applied for real, IPv6 ipBlocks stored as rendered", () => {
      const objects = renderAllObjects(fixtureConfig("dualstack")).filter((o) => !needsK3sCrd(o));
      const v6 = objects.filter((o) => o.kind === "NetworkPolicy" && JSON.stringify(o).includes("/128"));
      assert.ok(v6.length >= 2, "IPv6 ipBlocks are in the set");
      const namespaces = objects.filter((o) => o.kind === "Namespace");
      const ns = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(namespaces));
      assert.equal(ns.status, 0, ns.stderr);
      const rest = objects.filter((o) => o.kind !== "Namespace");
      const r = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=test-a", "-f", "-"], toYaml(rest));
      assert.equal(r.status, 0, `refused:\n${r.stderr}`);
      assert.equal(r.stdout.trim().split("\n").length, rest.length, r.stdout);
      // The API server keeps the ipBlocks as rendered: canonical text is what it stores.
      for (const policy of v6) {
        const got = cp.kubectl(["get", "networkpolicy", "-n", policy.metadata.namespace!, policy.metadata.name, "-o", "json"]);
        assert.equal(got.status, 0, got.stderr);
        const stored = (JSON.parse(got.stdout) as { spec: unknown }).spec;
        assert.deepEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(JSON.stringify(policy.spec)));
      }
      const cleanup = cp.kubectl(["delete", "-f", "-", "--wait=true", "--timeout=180s"], toYaml([...rest, ...namespaces]));
      assert.equal(cleanup.status, 0, cleanup.stderr);
    });
  });

  describe("(b, c) the in-cluster layer through the real engine and kubernetes provider", () => {
    let stack: Stack;
    let events: EngineEvent[] = [];
    const onEvent = (e: EngineEvent) => events.push(e);
    const ops = () =>
      events
        .filter((e) => e.resOutputsEvent && e.resOutputsEvent.metadata.op !== "same")
        .map((e) => `${e.resOutputsEvent!.metadata.op} ${e.resOutputsEvent!.metadata.urn.split("::").pop()}`);
    const kubeconfig = () => readFileSync(cp.kubeconfig, "utf8");
    const program = (config: ResolvedConfig) => inClusterProgram(config, kubeconfig(), "prod");
    /** The config the stack's state was last brought to. */
    let deployed = prod;

    before(async function () {
      const missing = engineMissing();
      if (missing) {
        console.log(`    SKIPPED (b, c): ${missing}`);
        this.skip();
      }
      stack = await inlineStack(join(work, "engine"), "prod", program(prod));
    });

    it("(7) a coredns-custom made by hand beforehand is adopted: our keys take over, other keys stay", async () => {
      const made = cp.kubectl([
        "-n", "kube-system", "create", "configmap", "coredns-custom",
        "--from-literal=corp.example.com.server=old-by-hand", "--from-literal=byhand.server=kept",
      ]);
      assert.equal(made.status, 0, made.stderr);
      events = [];
      const up = await stack.up({ onEvent });
      assert.equal(up.summary.result, "succeeded");
      const cm = JSON.parse(cp.kubectl(["-n", "kube-system", "get", "configmap", "coredns-custom", "-o", "json"]).stdout) as { data: Record<string, string> };
      assert.match(cm.data["corp.example.com.server"]!, /^corp\.example\.com:53 \{/);
      assert.equal(cm.data["byhand.server"], "kept");
    });

    it("(b) every rendered object exists after up", () => {
      for (const o of [...renderTenants(prod), ...renderDns(prod)]) {
        const args = ["get", `${o.kind}.${o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : ""}`.replace(/\.$/, ""), o.metadata.name];
        const r = cp.kubectl(o.metadata.namespace ? ["-n", o.metadata.namespace, ...args] : args);
        assert.equal(r.status, 0, `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}: ${r.stderr}`);
      }
    });

    it("(b) a second up changes nothing", async () => {
      events = [];
      const up = await stack.up({ onEvent });
      assert.deepEqual(ops(), []);
      assert.deepEqual(Object.keys(up.summary.resourceChanges ?? {}), ["same"]);
      const pre = await savePreview("cluster-nochange", cliPreview(stack, program(prod)), 0);
      assert.deepEqual(Object.keys((JSON.parse(pre.json) as { changeSummary: object }).changeSummary), ["same"]);
    });

    it("(b) one quota change updates exactly that ResourceQuota", async () => {
      const changed = structuredClone(prod);
      const tenant = changed.tenants[0]!;
      const pods = (tenant.quota?.pods ?? 100) + 1;
      Object.assign(tenant.quota!, { pods });
      const next = await inlineStack(join(work, "engine"), "prod", program(changed));
      await savePreview("cluster-quota", cliPreview(next, program(changed)), 0);
      events = [];
      const up = await next.up({ onEvent });
      stack = next;
      deployed = changed;
      // One Kubernetes object; its parent TenantNamespaces records the tenants config as its input, so it is an update too.
      assert.deepEqual(ops().sort(), [`update prod-tenants`, `update prod-tenants-resourcequota-${tenant.namespace}-quota`], ops().join("\n"));
      assert.deepEqual(up.summary.resourceChanges, { same: up.summary.resourceChanges!.same, update: 2 });
      const hard = JSON.parse(cp.kubectl(["-n", tenant.namespace, "get", "resourcequota", "-o", "json"]).stdout) as { items: Array<{ spec: { hard: Record<string, string> } }> };
      assert.equal(hard.items[0]!.spec.hard.pods, String(pods));
    });

    it("(c) the policy pack runs in the engine, and a privileged tenant fails preview naming the policy", async () => {
      // On top of what (b) deployed, so the preview shows only the violating change.
      const violating = structuredClone(deployed);
      violating.tenants[1]!.podSecurity = "privileged";
      const s = await inlineStack(join(work, "engine"), "prod", program(violating));
      events = [];
      await assert.rejects(
        s.preview({ onEvent, policyPacks: [join(REPO, "policies")], policyPackConfigs: [join(REPO, "policies", "config", "prod.json")] }),
        (e: Error) => /tenant-pod-security/.test(e.message),
      );
      const policyEvents = events.filter((e) => e.policyEvent).map((e) => e.policyEvent!);
      const pack = ["--policy-pack", join(REPO, "policies"), "--policy-pack-config", join(REPO, "policies", "config", "prod.json")];
      // The CLI exits 1 when a mandatory policy fails the preview (measured with 3.260.0).
      const cli = await savePreview("cluster-violation", cliPreview(s, program(violating), pack), 1);
      assert.match(cli.events, /tenant-pod-security/, "the CLI's event log carries the violation");
      assert.ok(policyEvents.some((p) => p.policyName === "tenant-pod-security" && p.enforcementLevel === "mandatory" && /enforces privileged/.test(p.message)), JSON.stringify(policyEvents));
      // The same pack passes the compliant program (the real engine ran every policy without crashing).
      events = [];
      const ok = await stack.preview({ onEvent, policyPacks: [join(REPO, "policies")], policyPackConfigs: [join(REPO, "policies", "config", "prod.json")] });
      assert.deepEqual(Object.keys(ok.changeSummary), ["same"]);
      assert.deepEqual(events.filter((e) => e.policyEvent && e.policyEvent.enforcementLevel === "mandatory").map((e) => e.policyEvent!.message), []);
    });

    it("(b) destroy removes every object", async () => {
      const down = await stack.destroy();
      assert.equal(down.summary.result, "succeeded");
      for (const t of prod.tenants) assert.notEqual(cp.kubectl(["get", "namespace", t.namespace]).status, 0, `namespace ${t.namespace} is still there`);
      assert.notEqual(cp.kubectl(["-n", "kube-system", "get", "configmap", "coredns-custom"]).status, 0);
      assert.notEqual(cp.kubectl(["-n", "kube-system", "get", "daemonset", "node-local-dns"]).status, 0);
    });

    it("(7) a node-local-dns DaemonSet from another install is not taken over: up stops naming the object and the other manager; removing it converges", async () => {
      const other = renderDns(prod).find((o) => o.kind === "DaemonSet" && o.metadata.name === "node-local-dns")!;
      const theirs = structuredClone(other) as KubeObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } };
      theirs.metadata = { name: "node-local-dns", namespace: "kube-system" };
      theirs.spec.template.spec.containers[0]!.image = "registry.example.com/other/k8s-dns-node-cache:1.0.0";
      const made = cp.kubectl(["create", "-f", "-"], JSON.stringify(theirs));
      assert.equal(made.status, 0, made.stderr);
      await assert.rejects(stack.up(), (e: Error) => {
        assert.match(e.message, /daemonset-kube-system-node-local-dns/, "names the object");
        assert.match(e.message, /Server-Side Apply field conflict/);
        assert.match(e.message, /conflict with "kubectl-create"/, "names the other field manager");
        assert.match(e.message, /\.image/, "names the field");
        return true;
      });
      const image = () => cp.kubectl(["-n", "kube-system", "get", "daemonset", "node-local-dns", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).stdout;
      assert.equal(image(), "registry.example.com/other/k8s-dns-node-cache:1.0.0", "the other install is untouched");
      // The fix the README names: remove the other install; the next up converges.
      assert.equal(cp.kubectl(["-n", "kube-system", "delete", "daemonset", "node-local-dns", "--wait=true"]).status, 0);
      events = [];
      const up = await stack.up({ onEvent });
      assert.equal(up.summary.result, "succeeded");
      assert.equal(image(), (other as typeof theirs).spec.template.spec.containers[0]!.image);
      const again = await stack.up({ onEvent: () => {} });
      assert.deepEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"]);
      assert.equal((await stack.destroy()).summary.result, "succeeded");
    });
  });

  describe("(e) Pod Security in tenant namespaces", () => {
    it("a privileged pod in a restricted tenant namespace is refused", () => {
      const tenant = prod.tenants.find((t) => t.podSecurity === "restricted")!;
      const ns = renderTenants(prod).find((o) => o.kind === "Namespace" && o.metadata.name === tenant.namespace)!;
      const made = cp.kubectl(["apply", "--server-side", "--field-manager=test-e", "-f", "-"], toYaml([ns]));
      assert.equal(made.status, 0, made.stderr);
      try {
        // Pods need the namespace's default ServiceAccount (the controller creates it) to reach Pod Security.
        const deadline = Date.now() + 60_000;
        while (cp.kubectl(["-n", tenant.namespace, "get", "serviceaccount", "default"]).status !== 0) {
          assert.ok(Date.now() < deadline, "no default ServiceAccount in the tenant namespace after 60s");
          spawnSync("sleep", ["0.5"]);
        }
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "privileged", namespace: tenant.namespace },
          spec: { containers: [{ name: "c", image: "registry.k8s.io/pause:3.10", securityContext: { privileged: true } }] },
        };
        const r = cp.kubectl(["create", "-f", "-"], JSON.stringify(pod));
        assert.notEqual(r.status, 0, "admitted");
        assert.match(r.stderr, /violates PodSecurity "restricted:latest"/);
        assert.match(r.stderr, /privileged/);
      } finally {
        cp.kubectl(["delete", "namespace", "--wait=true", "--timeout=180s", tenant.namespace]);
      }
    });
  });

  describe("(d) the rendered custom EncryptionConfiguration on the API server", () => {
    const groups = prod.encryption.custom!.resources;
    const sample = (resource: string) => {
      // One object of each type the configuration names, in a namespace of its own.
      const kind = resource.split(".")[0]!;
      if (kind === "secrets") return { kind: "Secret", key: "secrets", body: { apiVersion: "v1", kind: "Secret", metadata: { name: "enc-test", namespace: "enc-test" }, stringData: { k: "v" } } };
      if (kind === "configmaps") return { kind: "ConfigMap", key: "configmaps", body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "enc-test", namespace: "enc-test" }, data: { k: "v" } } };
      if (kind === "events") return { kind: "Event", key: "events", body: { apiVersion: "v1", kind: "Event", metadata: { name: "enc-test", namespace: "enc-test" }, involvedObject: { kind: "ConfigMap", name: "enc-test", namespace: "enc-test" }, reason: "Test", message: "m", type: "Normal" } };
      throw new Error(`no sample object for ${resource}: extend this test`);
    };
    const expected = (group: (typeof groups)[number], keyName: string) => (group.providers[0] === "identity" ? "k8s\u0000" : `k8s:enc:${group.providers[0]}:v1:${keyName}:`);
    const check = async (keyName: string) => {
      for (const group of groups) {
        for (const resource of group.resources) {
          const s = sample(resource);
          const raw = await cp.etcdGet(`/registry/${s.key}/enc-test/enc-test`);
          assert.ok(raw, `${resource}: not in etcd`);
          const want = expected(group, keyName);
          assert.equal(raw.subarray(0, want.length).toString("latin1"), want, `${resource}: stored as ${JSON.stringify(raw.subarray(0, 40).toString("latin1"))}`);
        }
      }
    };

    before(() => {
      assert.equal(cp.kubectl(["create", "namespace", "enc-test"]).status, 0);
      for (const group of groups) {
        for (const resource of group.resources) {
          const r = cp.kubectl(["create", "-f", "-"], JSON.stringify(sample(resource).body));
          assert.equal(r.status, 0, r.stderr);
        }
      }
    });

    it("every named resource type is stored with its group's first provider and key", async () => {
      await check(KEY_A.name);
    });

    it("after a new key is rolled out (the deployed one kept) and the rotation scripts ran: the new key everywhere, old data still readable", async () => {
      writeEncryptionConfig([KEY_B]);
      const deployed = readFileSync(join(root, ENCRYPTION_TARGET), "utf8");
      assert.ok(deployed.includes(KEY_A.name) && deployed.indexOf(KEY_B.name) < deployed.indexOf(KEY_A.name), "new key first, deployed key kept");
      // The API server reloads the file on its own (K3s runs it with automatic reload; so does this one).
      const probe = async () => {
        cp.kubectl(["-n", "enc-test", "delete", "secret", "reload-probe", "--ignore-not-found"]);
        cp.kubectl(["-n", "enc-test", "create", "secret", "generic", "reload-probe", "--from-literal=k=v"]);
        const raw = await cp.etcdGet("/registry/secrets/enc-test/reload-probe");
        return raw?.subarray(0, 60).toString("latin1").includes(KEY_B.name) ?? false;
      };
      const deadline = Date.now() + 180_000;
      while (!(await probe())) {
        assert.ok(Date.now() < deadline, "the API server did not pick up the new configuration in 180s");
        await new Promise((r) => setTimeout(r, 2000));
      }
      // Old data is still readable with the kept key.
      assert.equal(cp.kubectl(["-n", "enc-test", "get", "secret", "enc-test", "-o", "jsonpath={.data.k}"]).stdout, Buffer.from("v").toString("base64"));

      // The rotation phases as the first server runs them; `k3s kubectl` is this API server's kubectl.
      const bin = join(work, "k3s-bin");
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, "k3s"), `#!/bin/sh\n[ "$1" = kubectl ] || { echo "k3s stand-in: only kubectl" >&2; exit 2; }\nshift\nexec '${join(kubernetesBin(), "kubectl")}' --kubeconfig='${cp.kubeconfig}' "$@"\n`);
      chmodSync(join(bin, "k3s"), 0o755);
      const rotated = structuredClone(prod);
      rotated.encryption.rotation = 1;
      for (const phase of rotationPhases(rotated)) {
        const r = spawnSync("bash", ["-c", phase.script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        assert.equal(r.status, 0, `${phase.name}: ${r.stderr}`);
      }
      await check(KEY_B.name);
    });
  });

  describe("the drain on a real API server: kubectl's real custom-columns output parsed, the etcd-member mark accepted, Nodes deleted", () => {
    const MEMBER = "etcd.k3s.cattle.io/node-name";
    /** A Node as its kubelet and K3s would leave it: InternalIP, Ready, and a server's etcd member annotation. */
    const node = (name: string, address: string, ready: string, member?: string) => {
      const created = cp.kubectl(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name, annotations: member ? { [MEMBER]: member } : {} } }));
      assert.equal(created.status, 0, created.stderr);
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const status = { conditions: [{ type: "Ready", status: ready, reason: "KubeletReady", message: "test", lastHeartbeatTime: now, lastTransitionTime: now }], addresses: [{ type: "InternalIP", address }] };
      const patched = cp.kubectl(["patch", "node", name, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
      assert.equal(patched.status, 0, patched.stderr);
    };
    const drain = (name: string) => {
      const bin = join(work, "k3s-drain-bin");
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, "k3s"), `#!/bin/sh\n[ "$1" = kubectl ] || { echo "k3s stand-in: only kubectl" >&2; exit 2; }\nshift\nexec '${join(kubernetesBin(), "kubectl")}' --kubeconfig='${cp.kubeconfig}' "$@"\n`);
      chmodSync(join(bin, "k3s"), 0o755);
      const script = renderDrainScript({ ...prod.nodes[0]!, name });
      return spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, K3S_PLATFORM_ROOT: join(work, "drain-root") } });
    };

    after(() => {
      cp.kubectl(["delete", "node", "--all", "--wait=false"]);
    });

    it("a host re-used by another server: no cordon or drain, the old Node marked (one patch, accepted) and deleted, the new one and its member untouched", () => {
      node("reused-old", "10.250.0.7", "True", "reused-old-5f3a9c01");
      node("reused-new", "10.250.0.7", "True", "reused-old-5f3a9c01");
      node("bystander", "10.250.0.8", "True", "bystander-0c0ffee0");
      const r = drain("reused-old");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /its host serves Node reused-new now, so no kubelet runs for reused-old: skipping cordon and drain/);
      assert.match(r.stdout, /etcd member reused-old-5f3a9c01 belongs to Node reused-new now .*: marking it removed on Node reused-old/);
      assert.match(cp.kubectl(["get", "node", "reused-old"]).stderr, /NotFound/);
      assert.equal(cp.kubectl(["get", "node", "reused-new", "-o", "jsonpath={.metadata.annotations.etcd\\.k3s\\.cattle\\.io/node-name}"]).stdout, "reused-old-5f3a9c01");
      assert.equal(cp.kubectl(["get", "node", "reused-new", "-o", "jsonpath={.spec.unschedulable}"]).stdout, "", "the new Node is not cordoned");
    });

    it("a node on its own host, Ready: cordoned, drained (no pods), deleted; its member not kept (K3s would remove it)", () => {
      node("alone", "10.250.0.9", "True", "alone-11111111");
      const r = drain("alone");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /decommission\[alone\]: cordon .*\n.*decommission\[alone\]: drain /s);
      assert.doesNotMatch(r.stdout, /marking it removed|skipping cordon/);
      assert.match(cp.kubectl(["get", "node", "alone"]).stderr, /NotFound/);
    });
  });
});

