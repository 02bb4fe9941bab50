import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { postRegistrationLabelCommand } from "../../components/cluster/component";
import { StackInput } from "../../components/config/schema";
import { parseStackConfig } from "../../components/stack/load";
import { vipWaitSnippet } from "../../components/kube-vip/render";
import { needsK3sCrd, renderAllObjects } from "../../components/kube/all";
import { SERVER_MANIFESTS_DIR } from "../../components/manifests/render";
import { planCluster, planNode } from "../../components/plan/node";
import { inboundPorts } from "../../components/os-prep/render";
import { containerdTemplateTarget, renderRuntimeClasses } from "../../components/runtimes/render";
import { LB_ENABLE_LABEL, LB_POOL_LABEL, lbPools } from "../../components/servicelb/pools";
import { sampleConfig, variant } from "../helpers/samples";

/** Asserts the config is rejected with an issue at exactly `path` whose message matches. */
function rejects(raw: StackInput, path: string, message: RegExp): void {
  const result = parseStackConfig(raw);
  assert.equal(result.ok, false, `expected ${path} to be rejected`);
  if (result.ok) return;
  const hit = result.issues.find((i) => i.path === path);
  assert.ok(hit, `no issue at ${path}; got:\n${result.issues.map((i) => `${i.path}: ${i.message}`).join("\n")}`);
  assert.match(hit.message, message);
}

function accepts(raw: StackInput) {
  const result = parseStackConfig(raw);
  assert.ok(result.ok, result.ok ? "" : result.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return result;
}

const k3s = (raw: StackInput) => (raw.k3s ??= {});
const fileOf = (plan: ReturnType<typeof planNode>, target: string) => plan.files.find((f) => f.target === target);

describe("issue 14: Traefik, ServiceLB pools, API VIP, embedded registry, runtimes", () => {
  describe("Traefik HelmChartConfig", () => {
    const target = `${SERVER_MANIFESTS_DIR}/k3s-platform-traefik-config.yaml`;

    it("every server gets a HelmChartConfig kube-system/traefik whose valuesContent is the values; agents get none", () => {
      const raw = variant("staging", (r) => {
        r.nodes.push({ name: "stg-server-2", host: "198.51.100.11", role: "server" }, { name: "stg-server-3", host: "198.51.100.12", role: "server" });
      });
      const config = accepts(raw).ok ? parseStackConfig(raw) : undefined;
      assert.ok(config?.ok);
      for (const plan of planCluster(config.config).nodes) {
        const file = fileOf(plan, target);
        if (plan.node.role === "agent") {
          assert.equal(file, undefined, plan.node.name);
          continue;
        }
        assert.ok(file, `${plan.node.name} lacks ${target}`);
        const docs = parseAllDocuments(file.content).map((d) => d.toJS() as Record<string, any>);
        assert.equal(docs.length, 1);
        assert.deepEqual([docs[0]!.apiVersion, docs[0]!.kind, docs[0]!.metadata.name, docs[0]!.metadata.namespace], ["helm.cattle.io/v1", "HelmChartConfig", "traefik", "kube-system"]);
        assert.equal(typeof docs[0]!.spec.valuesContent, "string");
        assert.deepEqual(parse(docs[0]!.spec.valuesContent), raw.k3s!.traefik!.values);
      }
    });

    it("never writes K3s' own traefik.yaml, and a values change places the file without restarting K3s", () => {
      const config = sampleConfig("staging");
      const plan = planNode(config, config.nodes[0]!);
      assert.ok(plan.files.every((f) => f.target !== `${SERVER_MANIFESTS_DIR}/traefik.yaml`));
      const apply = plan.files.find((f) => f.name === "apply.sh")!.content;
      assert.match(apply, /^place manifest-k3s-platform-traefik-config\.yaml /m);
      const fingerprint = apply.split("\n").find((l) => l.startsWith("fingerprint="))!;
      assert.ok(!fingerprint.includes("traefik"), "the manifest is not part of the restart fingerprint");
      assert.ok(fingerprint.includes("/etc/rancher/k3s/config.yaml"));
    });

    it("is refused when traefik is disabled", () =>
      rejects(variant("staging", (r) => (k3s(r).disable = ["traefik"])), "k3s-platform:k3s.traefik", /k3s\.disable lists traefik/));

    it("values must be a YAML object", () =>
      rejects(variant("staging", (r) => (k3s(r).traefik = { values: "replicas: 2" as unknown as Record<string, unknown> })), "k3s-platform:k3s.traefik.values", /object|record/i));
  });

  describe("ServiceLB pools", () => {
    it("pool nodes get enablelb and lbpool after registration; the others lose them; the policy reads the same pools", () => {
      const config = sampleConfig("staging");
      const plan = planCluster(config);
      const byName = new Map(plan.nodes.map((n) => [n.node.name, n]));
      assert.deepEqual(
        [byName.get("stg-agent-1")!.postRegistrationLabels[LB_ENABLE_LABEL], byName.get("stg-agent-1")!.postRegistrationLabels[LB_POOL_LABEL]],
        ["true", "edge"],
      );
      assert.deepEqual(byName.get("stg-agent-2")!.removedLabels, [LB_ENABLE_LABEL, LB_POOL_LABEL]);
      assert.deepEqual(byName.get("stg-server-1")!.removedLabels, [LB_ENABLE_LABEL, LB_POOL_LABEL]);
      const command = postRegistrationLabelCommand(plan)!;
      assert.match(command, /label node stg-agent-1 --overwrite .*svccontroller\.k3s\.cattle\.io\/lbpool=edge/);
      assert.match(command, /label node stg-server-1 --overwrite svccontroller\.k3s\.cattle\.io\/enablelb- svccontroller\.k3s\.cattle\.io\/lbpool-/);
      assert.deepEqual(lbPools(config), Object.keys(config.k3s.serviceLb!.pools));
      // Not at registration: node-label would apply once and never change with the pools.
      const agentConfig = parse(byName.get("stg-agent-1")!.files.find((f) => f.name === "config.yaml")!.content) as Record<string, string[]>;
      assert.ok(!(agentConfig["node-label"] ?? []).some((l) => l.startsWith("svccontroller")));
    });

    it("without pools nobody's labels are touched", () => {
      const raw = variant("staging", (r) => delete k3s(r).serviceLb);
      const result = accepts(raw);
      assert.ok(result.ok && planCluster(result.config).nodes.every((n) => n.removedLabels.length === 0));
    });

    it("refuses unknown nodes, a node in two pools, servicelb disabled, and the labels set by hand", () => {
      rejects(variant("staging", (r) => (k3s(r).serviceLb = { pools: { edge: ["stg-agent-9"] } })), "k3s-platform:k3s.serviceLb.pools.edge[0]", /no node named "stg-agent-9"/);
      rejects(variant("staging", (r) => (k3s(r).serviceLb = { pools: { a: ["stg-agent-1"], b: ["stg-agent-1"] } })), "k3s-platform:k3s.serviceLb.pools.b[0]", /already in pool "a"/);
      rejects(variant("staging", (r) => (k3s(r).disable = ["servicelb"])), "k3s-platform:k3s.serviceLb", /k3s\.disable lists servicelb/);
      rejects(
        variant("staging", (r) => (r.nodes[1]!.labels = { [LB_POOL_LABEL]: "edge" })),
        `k3s-platform:nodes[1] (stg-agent-1).labels["${LB_POOL_LABEL}"]`,
        /managed by k3s\.serviceLb\.pools/,
      );
      rejects(variant("staging", (r) => (k3s(r).serviceLb = { pools: { "bad pool": ["stg-agent-1"] } })), 'k3s-platform:k3s.serviceLb.pools["bad pool"]', /label value/);
      rejects(variant("staging", (r) => (k3s(r).serviceLb = { pools: { edge: [] } })), "k3s-platform:k3s.serviceLb.pools.edge", /at least one node/);
    });
  });

  describe("API VIP (kube-vip)", () => {
    it("renders RBAC and a control-plane-only ARP DaemonSet with the pinned image into every server's manifests", () => {
      const config = sampleConfig("prod");
      for (const plan of planCluster(config).nodes) {
        const file = fileOf(plan, `${SERVER_MANIFESTS_DIR}/k3s-platform-kube-vip.yaml`);
        assert.equal(file !== undefined, plan.node.role === "server", plan.node.name);
      }
      const objects = renderAllObjects(config).filter((o) => o.metadata.name.includes("kube-vip"));
      assert.deepEqual(objects.map((o) => o.kind).sort(), ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"]);
      const ds = objects.find((o) => o.kind === "DaemonSet") as any;
      const container = ds.spec.template.spec.containers[0];
      const env = Object.fromEntries(container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      assert.equal(env.address, config.k3s.apiVip!.address);
      assert.equal(env.vip_interface, config.k3s.apiVip!.interface);
      assert.equal(env.vip_arp, "true");
      assert.equal(env.cp_enable, "true");
      assert.equal(env.svc_enable, "false");
      // The prod sample mirrors the pinned release and pins its digest (surfaces.ts imageFindings).
      assert.equal(container.image, config.k3s.apiVip!.image);
      assert.match(container.image, /\/kube-vip\/kube-vip:v\d+\.\d+\.\d+@sha256:[a-f0-9]{64}$/);
      // kube-vip v0.9.0 renamed vip_cidr to vip_subnet (KUBE_VIP_IMAGE is v1.2.2).
      assert.equal(env.vip_subnet, "32");
      assert.equal(env.vip_cidr, undefined);
      assert.equal(ds.spec.template.spec.hostNetwork, true);
      const terms = ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
      assert.deepEqual(terms.map((t: any) => t.matchExpressions[0].key), ["node-role.kubernetes.io/control-plane"]);
    });

    it("the VIP is a tls-san and, unless apiEndpoint names it, the API endpoint agents and the kubeconfig use", () => {
      const raw = variant("prod", (r) => delete k3s(r).apiEndpoint);
      const result = accepts(raw);
      assert.ok(result.ok);
      const plan = planCluster(result.config);
      assert.equal(plan.topology.apiEndpoint, "203.0.113.100");
      const server = parse(plan.nodes[0]!.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
      assert.ok((server["tls-san"] as string[]).includes("203.0.113.100"));
      const agent = parse(plan.nodes.find((n) => n.role === "agent")!.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
      assert.equal(agent.server, "https://203.0.113.100:6443");
      // Joining servers still register through the first server: the VIP may not exist yet.
      const second = parse(plan.nodes[1]!.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
      assert.equal(second.server, "https://203.0.113.11:6443");
    });

    it("air-gapped (prod), a warning says the kube-vip image must be pre-staged", () => {
      const result = parseStackConfig(variant("prod", () => {}));
      assert.ok(result.warnings.some((w) => w.path === "k3s-platform:k3s.apiVip.image" && /imagesDir/.test(w.message)));
    });

    it("agents wait for the VIP before installing; servers do not", () => {
      const plan = planCluster(sampleConfig("prod"));
      for (const n of plan.nodes) {
        const apply = n.files.find((f) => f.name === "apply.sh")!.content;
        const wait = apply.indexOf("VIP_URL=");
        if (n.role !== "agent") {
          assert.equal(wait, -1, n.node.name);
          continue;
        }
        assert.ok(wait > 0 && wait < apply.indexOf('bash "$STAGING/install-k3s.sh"'), `${n.node.name}: the wait runs before the install`);
        assert.match(apply, /VIP_URL=https:\/\/k3s\.prod\.example\.com:6443\/ping/);
      }
    });

    it("the wait loops until /ping answers (run with a stand-in curl that fails twice)", function () {
      this.timeout(20000);
      const dir = mkdtempSync(join(tmpdir(), "vip-wait-"));
      try {
        const curl = join(dir, "curl");
        // Stand-in for curl -f: exit 22 (HTTP error) until the third call, as while kube-vip has no leader.
        writeFileSync(curl, `#!/bin/sh\nn=$(cat "${dir}/count" 2>/dev/null || echo 0)\nn=$((n + 1))\necho "$n" >"${dir}/count"\necho "$*" >>"${dir}/args"\n[ "$n" -ge 3 ]\n`);
        chmodSync(curl, 0o755);
        const script = `set -euo pipefail\nfail() { echo "FAIL: $*" >&2; exit 1; }\n${vipWaitSnippet(sampleConfig("prod")).text}\necho joined\n`;
        const r = spawnSync("bash", ["-c", script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.trim(), "joined");
        assert.equal(readFileSync(join(dir, "count"), "utf8").trim(), "3");
        assert.match(readFileSync(join(dir, "args"), "utf8"), /--noproxy \* .*https:\/\/k3s\.prod\.example\.com:6443\/ping/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("refuses a VIP that is a node's address or inside the pod/service networks, an unpinned image, a bad interface", () => {
      rejects(variant("prod", (r) => (k3s(r).apiVip = { address: "203.0.113.11", interface: "eth0" })), "k3s-platform:k3s.apiVip.address", /prod-server-1.*host/);
      rejects(variant("prod", (r) => (k3s(r).apiVip = { address: "10.43.0.100", interface: "eth0" })), "k3s-platform:k3s.apiVip.address", /serviceCidr/);
      rejects(variant("prod", (r) => (k3s(r).apiVip = { address: "203.0.113.100", interface: "eth0", image: "ghcr.io/kube-vip/kube-vip" })), "k3s-platform:k3s.apiVip.image", /tag/);
      rejects(variant("prod", (r) => (k3s(r).apiVip = { address: "203.0.113.100", interface: "eth0", image: "ghcr.io/kube-vip/kube-vip:latest" })), "k3s-platform:k3s.apiVip.image", /latest/);
      rejects(variant("prod", (r) => (k3s(r).apiVip = { address: "203.0.113.100", interface: "eth0; reboot" })), "k3s-platform:k3s.apiVip.interface", /interface name/);
      rejects(variant("prod", (r) => (k3s(r).apiEndpoint = "203.0.113.99")), "k3s-platform:k3s.apiEndpoint", /apiVip\.address is 203\.0\.113\.100/);
    });
  });

  describe("embedded registry mirror (Spegel)", () => {
    it("embedded-registry on servers only, mirrors in every node's registries.yaml, 5001/tcp (and 6443 on agents) from the nodes", () => {
      const config = sampleConfig("staging");
      for (const plan of planCluster(config).nodes) {
        const flags = parse(plan.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
        assert.equal(flags["embedded-registry"], plan.node.role === "server" ? true : undefined, plan.node.name);
        const registries = parse(plan.files.find((f) => f.name === "registries.yaml")!.content) as { mirrors: Record<string, unknown> };
        assert.ok("registry.k8s.io" in registries.mirrors);
        const ports = inboundPorts(config, plan.node);
        const peer = ports.find((p) => p.port === "5001");
        assert.deepEqual(peer?.sources, ["198.51.100.10", "198.51.100.20", "198.51.100.21"]);
        if (plan.node.role === "agent") assert.deepEqual(ports.find((p) => p.port === "6443")?.sources, ["198.51.100.10", "198.51.100.20", "198.51.100.21"]);
      }
      const without = accepts(variant("staging", (r) => (k3s(r).embeddedRegistry = false, (k3s(r).registries!.mirrors as Record<string, unknown>)["registry.k8s.io"] = { endpoint: ["https://registry.example.com"] })));
      assert.ok(without.ok && !inboundPorts(without.config, without.config.nodes[1]!).some((p) => p.port === "5001"));
    });

    it("needs at least one mirror; an endpoint-less mirror needs it; not with docker", () => {
      rejects(variant("staging", (r) => (k3s(r).registries = { mirrors: {} })), "k3s-platform:k3s.embeddedRegistry", /add k3s\.registries\.mirrors/);
      rejects(variant("staging", (r) => (k3s(r).embeddedRegistry = false)), 'k3s-platform:k3s.registries.mirrors["registry.k8s.io"].endpoint', /embeddedRegistry/);
      rejects(variant("staging", (r) => (k3s(r).docker = true)), "k3s-platform:k3s.embeddedRegistry", /docker/);
    });

    it("is managed: refused in pass-through; warns while experimental (before v1.30.8 on the v1.30 line)", () => {
      rejects(variant("staging", (r) => (k3s(r).extraServerConfig = { "embedded-registry": true })), 'k3s-platform:k3s.extraServerConfig["embedded-registry"]', /set k3s\.embeddedRegistry/);
      const old = accepts(variant("staging", (r) => (k3s(r).version = "v1.30.7+k3s1")));
      assert.ok(old.warnings.some((w) => w.path === "k3s-platform:k3s.embeddedRegistry" && /experimental.*v1\.30\.8/.test(w.message)));
      assert.ok(!accepts(variant("staging", () => {})).warnings.some((w) => w.path === "k3s-platform:k3s.embeddedRegistry"));
    });
  });

  describe("runtimes", () => {
    it("nvidia RuntimeClasses when a node has GPUs and K3s' runtimes add-on is off; none when K3s provides them", () => {
      const staging = sampleConfig("staging");
      assert.deepEqual(renderRuntimeClasses(staging).map((o) => [o.metadata.name, o.handler]), [["nvidia", "nvidia"], ["nvidia-experimental", "nvidia-experimental"]]);
      const withAddon = accepts(variant("staging", (r) => (k3s(r).disable = [])));
      assert.ok(withAddon.ok);
      assert.deepEqual(renderRuntimeClasses(withAddon.config), []);
    });

    it("GPU nodes are labelled and os-prep checks the NVIDIA runtime there only", () => {
      const plan = planCluster(sampleConfig("staging"));
      for (const n of plan.nodes) {
        const gpu = n.node.gpu === "nvidia";
        assert.equal(n.postRegistrationLabels["nvidia.com/gpu.present"], gpu ? "true" : undefined, n.node.name);
        assert.equal(n.files.find((f) => f.name === "os-prep.sh")!.content.includes("nvidia-container-runtime"), gpu, n.node.name);
      }
    });

    it("default-runtime, snapshotter and docker reach every node's config.yaml (agent flags), typed", () => {
      const raw = variant("dev", (r) => {
        k3s(r).defaultRuntime = "crun";
        k3s(r).snapshotter = "stargz";
      });
      const result = accepts(raw);
      assert.ok(result.ok);
      for (const n of planCluster(result.config).nodes) {
        const flags = parse(n.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
        assert.deepEqual([flags["default-runtime"], flags.snapshotter], ["crun", "stargz"], n.node.name);
      }
      const docker = accepts(variant("dev", (r) => (k3s(r).docker = true)));
      assert.ok(docker.ok);
      for (const n of planCluster(docker.config).nodes) {
        assert.equal((parse(n.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>).docker, true);
        assert.match(n.files.find((f) => f.name === "os-prep.sh")!.content, /service_active docker \|\| fail/);
      }
      rejects(variant("dev", (r) => (k3s(r).extraAgentConfig = { snapshotter: "stargz" })), 'k3s-platform:k3s.extraAgentConfig.snapshotter', /set k3s\.snapshotter/);
      rejects(variant("dev", (r) => (k3s(r).snapshotter = "zfs" as "stargz")), "k3s-platform:k3s.snapshotter", /./);
    });

    it("refuses nvidia as default runtime without GPUs on every node, and containerd settings with docker", () => {
      rejects(variant("staging", (r) => (k3s(r).defaultRuntime = "nvidia")), "k3s-platform:nodes[0] (stg-server-1).gpu", /does not declare gpu: nvidia/);
      rejects(variant("dev", (r) => ((k3s(r).docker = true), (k3s(r).snapshotter = "stargz"))), "k3s-platform:k3s.snapshotter", /cri-dockerd/);
      rejects(variant("staging", (r) => (k3s(r).docker = true, k3s(r).embeddedRegistry = false, delete (k3s(r).registries!.mirrors as Record<string, unknown>)["registry.k8s.io"])), "k3s-platform:nodes[2] (stg-agent-2).gpu", /Docker/);
    });

    it("the containerd template lands where the release's containerd reads it (config-v3 from v1.31.6 / v1.32.2)", () => {
      const cases: Array<[{ version?: string; channel?: string }, string]> = [
        [{ version: "v1.30.14+k3s1" }, "config.toml.tmpl"],
        [{ version: "v1.31.5+k3s1" }, "config.toml.tmpl"],
        [{ version: "v1.31.6+k3s1" }, "config-v3.toml.tmpl"],
        [{ version: "v1.32.1+k3s1" }, "config.toml.tmpl"],
        [{ version: "v1.32.2+k3s1" }, "config-v3.toml.tmpl"],
        [{ version: "v1.33.0+k3s1" }, "config-v3.toml.tmpl"],
        [{ channel: "v1.31" }, "config-v3.toml.tmpl"],
        [{ channel: "stable" }, "config-v3.toml.tmpl"],
      ];
      for (const [release, name] of cases) {
        assert.equal(containerdTemplateTarget({ k3s: release } as Parameters<typeof containerdTemplateTarget>[0]), `/var/lib/rancher/k3s/agent/etc/containerd/${name}`, JSON.stringify(release));
      }
      const config = sampleConfig("staging");
      for (const n of planCluster(config).nodes) {
        const file = n.files.find((f) => f.name === "containerd.toml.tmpl")!;
        // The staging sample pins v1.37.1+k3s1 (containerd 2, config version 3).
        assert.equal(file.target, "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl");
        assert.equal(file.content, config.k3s.containerdTemplate);
        assert.match(file.content, /plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes/, "a config-v3 template names containerd 2's CRI runtime plugin");
        // An agent's apply.sh lists what it fingerprints in FINGERPRINT_INPUTS (its dry run swaps in the staged files: issue 26).
        const lines = n.files.find((f) => f.name === "apply.sh")!.content.split("\n");
        const inputs = lines.find((l) => l.startsWith("FINGERPRINT_INPUTS=(")) ?? lines.find((l) => l.startsWith("fingerprint="))!;
        assert.match(inputs, /config-v3\.toml\.tmpl/, "containerd reads it at start: a change restarts");
      }
      const bare = accepts(variant("dev", (r) => (k3s(r).containerdTemplate = "version = 2\n")));
      assert.ok(bare.warnings.some((w) => w.path === "k3s-platform:k3s.containerdTemplate"));
    });
  });

  it("objects that need a K3s CRD are told apart for the real-API-server suite", () => {
    const all = [...renderAllObjects(sampleConfig("staging")), ...renderAllObjects(sampleConfig("prod"))];
    assert.deepEqual([...new Set(all.filter(needsK3sCrd).map((o) => o.kind))], ["HelmChartConfig"]);
    const kinds = new Set(all.filter((o) => !needsK3sCrd(o)).map((o) => o.kind));
    for (const k of ["RuntimeClass", "DaemonSet", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"]) assert.ok(kinds.has(k), k);
  });
});
