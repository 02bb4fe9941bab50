import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { ConfigError } from "../../components/config/validate";
import { GENERATED_KEY, MOCK_SECRETS, plainOccurrences, runProgram, settle } from "../helpers/program";
import { MOCK_GENERATED } from "../helpers/pulumi-mocks";
import { sampleConfig, sampleRaw } from "../helpers/samples";

describe("index.ts (the program)", () => {
  it("registers nothing and names the config path when validation fails", async () => {
    const raw = sampleRaw("dev");
    const bad = { ...raw, nodes: [{ ...raw.nodes[0], labels: { "kubernetes.io/role": "master" } }] };
    const { resources, error } = runProgram(bad);
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.match(error.message, /k3s-platform:nodes\[0\] \(dev-server-1\)\.labels\["kubernetes\.io\/role"\]/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(resources, []);
  });

  it("requires the datastore endpoint secret for an external datastore", () => {
    const raw = sampleRaw("dev");
    const { error, resources } = runProgram({ ...raw, k3s: { ...raw.k3s, datastore: { type: "external" } } });
    assert.match(String(error), /k3s-platform:datastoreEndpoint/);
    assert.deepEqual(resources, []);
  });

  it("reports a schema error and a missing secret in one round", () => {
    const raw = sampleRaw("dev");
    const nodes = [raw.nodes[0], { ...raw.nodes[1], role: "worker" }];
    const { error, resources } = runProgram({ ...raw, nodes, k3s: { ...raw.k3s, datastore: { type: "external" } } });
    assert.ok(error instanceof ConfigError, String(error));
    assert.deepEqual(error.issues.map((i) => i.path).sort(), ["k3s-platform:datastoreEndpoint", "k3s-platform:nodes[1] (dev-agent-1).role"]);
    assert.deepEqual(resources, []);
  });

  it("builds the dev sample and exports the kubeconfig as a secret", async () => {
    const { stackExports, error } = runProgram(sampleRaw("dev"));
    assert.equal(error, undefined);
    const kubeconfig = stackExports!.kubeconfig as pulumi.Output<string>;
    assert.equal(await pulumi.isSecret(kubeconfig), true);
    assert.deepEqual(stackExports!.encryptionStatus, { enabled: false }, "the dev sample has no secrets encryption: an export, not undefined");
    assert.ok(Object.values(stackExports!).every((v) => v !== undefined), "no undefined stack output (the engine warns on each)");
    assert.deepEqual(stackExports!.nodes, [
      { name: "dev-server-1", role: "first-server", host: "192.0.2.10" },
      { name: "dev-agent-1", role: "agent", host: "192.0.2.20" },
    ]);
  });

  describe("Kubernetes layer", () => {
    for (const env of ["dev", "staging", "prod"] as const) {
      it(`${env}: every Kubernetes object goes through the cluster's provider`, async () => {
        const { stackExports, resources, error } = runProgram(sampleRaw(env), env);
        assert.equal(error, undefined);
        await settle(stackExports);
        const providers = resources.filter((r) => r.type === "pulumi:providers:kubernetes");
        assert.deepEqual(providers.map((p) => p.name), [`${env}-k8s`]);
        const objects = resources.filter((r) => r.type.startsWith("kubernetes:"));
        assert.ok(objects.length > 0);
        for (const o of objects) assert.match(o.provider ?? "", new RegExp(`::${env}-k8s::`), o.name);

        const config = sampleConfig(env);
        for (const t of config.tenants) {
          const mine = objects.filter((o) => (o.rawInputs.metadata as { namespace?: string } | undefined)?.namespace === t.namespace);
          assert.equal(mine.filter((o) => o.type === "kubernetes:core/v1:ResourceQuota").length, 1, t.namespace);
          assert.equal(mine.filter((o) => o.type === "kubernetes:core/v1:LimitRange").length, 1, t.namespace);
          assert.ok(mine.some((o) => o.name.endsWith("-default-deny")));
        }
        const has = (name: string) => objects.some((o) => (o.rawInputs.metadata as { name: string }).name === name);
        assert.equal(has("node-local-dns"), config.dns.nodeLocal.enabled);
        assert.equal(has("dns-autoscaler"), config.dns.autoscaler.enabled);
      });
    }

    it("no Kubernetes provider when there is nothing to put in the cluster", async () => {
      const raw = sampleRaw("dev");
      const { stackExports, resources } = runProgram({ ...raw, tenants: [], dns: {} });
      await settle(stackExports);
      assert.equal(resources.filter((r) => r.type.startsWith("pulumi:providers:kubernetes") || r.type.startsWith("kubernetes:")).length, 0);
    });
  });

  it("no secret is, or derives, a resource ID (issue 16.2): no RandomBytes, generated values only behind ID-less resources", async () => {
    for (const stack of ["dev", "staging", "prod"]) {
      const { stackExports, resources, error } = runProgram(stack === "prod" ? sampleRaw("prod") : sampleRaw(stack as "dev" | "staging"), stack);
      assert.equal(error, undefined);
      await settle(stackExports);
      assert.deepEqual(resources.filter((r) => r.type === "random:index/randomBytes:RandomBytes").map((r) => r.name), [], `${stack}: RandomBytes' ID is its value`);
      for (const r of resources) {
        for (const secret of MOCK_SECRETS) assert.ok(!r.id.includes(secret), `${stack}: ${r.name}'s ID holds a secret`);
      }
    }
  });

  it("prod: generated encryption keys never appear in a plain input", async () => {
    const { stackExports, resources, error } = runProgram(sampleRaw("prod"), "prod");
    assert.equal(error, undefined);
    await settle(stackExports);
    // The secrets command's stdin is one base64 line per secret file.
    const decoded = (r: (typeof resources)[number]) =>
      String((r.rawInputs.stdin as { value?: string } | undefined)?.value ?? "").split("\n").map((l) => Buffer.from(l, "base64").toString("utf8")).join("\n");
    const servers = resources.filter((r) => /-prod-server-\d-secrets$/.test(r.name));
    assert.equal(servers.length, 3);
    for (const r of servers) assert.ok(decoded(r).includes(GENERATED_KEY), `${r.name}: the key reaches the server's encryption config`);
    for (const r of resources) assert.deepEqual(plainOccurrences(r.rawInputs, GENERATED_KEY), [], `${r.name} holds the key in plain text`);
    assert.deepEqual(await new Promise((resolve) => (stackExports!.encryptionStatus as pulumi.Output<unknown>).apply(resolve)), {
      mode: "custom",
      enabled: true,
      configSha256: undefined,
      providers: undefined,
    });
  });

  describe("outputs a user needs", () => {
    const resolved = <T>(o: unknown) => new Promise<T>((resolve) => (o as pulumi.Output<T>).apply(resolve));

    for (const env of ["dev", "prod"] as const) {
      it(`${env}: kubeconfig with a context, cluster and user named after the stack at the API endpoint; the endpoint, nodes and K3s version`, async () => {
        const stack = `${env}-east`;
        const { stackExports, error } = runProgram(sampleRaw(env), stack);
        assert.equal(error, undefined);
        const config = sampleConfig(env);
        const firstServer = config.nodes.find((n) => n.role === "server")!;
        const endpoint = config.k3s.apiEndpoint ?? firstServer.host;
        assert.equal(stackExports!.apiEndpoint, endpoint);
        const kubeconfig = parse(await resolved<string>(stackExports!.kubeconfig)) as {
          "current-context": string;
          contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
          clusters: Array<{ name: string; cluster: { server: string } }>;
        };
        assert.equal(kubeconfig["current-context"], stack);
        assert.deepEqual(kubeconfig.contexts.map((c) => [c.name, c.context.cluster, c.context.user]), [[stack, stack, stack]]);
        assert.deepEqual(kubeconfig.clusters.map((c) => [c.name, c.cluster.server]), [[stack, `https://${endpoint}:6443`]]);
        assert.deepEqual(
          (stackExports!.nodes as Array<{ name: string; host: string }>).map((n) => [n.name, n.host]).sort(),
          config.nodes.filter((n) => n.decommission !== true).map((n) => [n.name, n.host]).sort(),
        );
        assert.equal(stackExports!.k3sVersion, config.k3s.version);
      });
    }

    it("a channel instead of a version: k3sVersion is the release the k3s-release step recorded (issue 28), channel:<name> while it is unreadable", async () => {
      const raw = sampleRaw("dev");
      const channel = { ...raw, k3s: { ...raw.k3s, version: undefined, channel: "stable" } };
      // What the step prints on the first server (components/k3s/release.ts RELEASE_LINE).
      const recorded = runProgram(channel, "dev", [], { "dev-k3s-release": "dev-server-1: channel stable at https://update.k3s.io/v1-release/channels\nk3s-platform cluster release: v1.36.3+k3s1\n" });
      assert.equal(recorded.error, undefined);
      assert.equal(await resolved<string>(recorded.stackExports!.k3sVersion), "v1.36.3+k3s1", "the pack's upgrade-path check compares a move to k3s.version against it");
      const unreadable = runProgram(channel, "dev", [], { "dev-k3s-release": "k3s-platform cluster release: latest\n" });
      assert.equal(await resolved<string>(unreadable.stackExports!.k3sVersion), "channel:stable");
    });

    it("clusterToken: a secret output holding the generated token; the configured one when set", async () => {
      const generated = runProgram(sampleRaw("dev"));
      const token = generated.stackExports!.clusterToken as pulumi.Output<string>;
      assert.equal(await pulumi.isSecret(token), true);
      assert.equal(await resolved<string>(token), MOCK_GENERATED.token);
      await settle(generated.stackExports);
      assert.ok(!generated.resources.some((r) => r.type === "k3s-platform:index:K3sCluster" && JSON.stringify(r.rawInputs).includes(MOCK_GENERATED.token)), "not a component input");

      const configured = runProgram({ ...sampleRaw("dev"), token: "configured-token-value" });
      const mine = configured.stackExports!.clusterToken as pulumi.Output<string>;
      assert.equal(await pulumi.isSecret(mine), true);
      assert.equal(await resolved<string>(mine), "configured-token-value");
    });
  });
});

