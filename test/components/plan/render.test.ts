import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../../components/config/stack-file";
import { loadStackConfig } from "../../../components/stack/load";
import { nodeContexts } from "../../../components/config/context";
import { AGENT_FLAG_SET, SERVER_FLAGS } from "../../../components/config/flags";
import { installEnv } from "../../../components/k3s/install";
import { churn } from "../../../components/plan/churn";
import { PATHS } from "../../../components/k3s/paths";
import { rewriteKubeconfig } from "../../../components/node/kubeconfig";
import { planCluster, planNode } from "../../../components/plan/node";
import { placeholder, renderTree } from "../../../tools/tree";
import { SAMPLE_KUBECONFIG } from "../../helpers/pulumi-mocks";
import { ENVS, FIXTURE_SAMPLES, REPO, sampleConfig, variant } from "../../helpers/samples";

const GOLDEN = join(REPO, "test", "golden");

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? listFiles(p, base) : [p.slice(base.length + 1)];
  });
}

function configYaml(env: (typeof ENVS)[number], nodeIndex: number): Record<string, unknown> {
  const config = sampleConfig(env);
  const plan = planNode(config, config.nodes[nodeIndex]!);
  return parse(plan.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
}

describe("renderers", () => {
  describe("golden files (UPDATE_GOLDEN=1 rewrites them; review the diff)", () => {
    const stacks: Array<[string, string]> = [
      ...ENVS.map((env): [string, string] => [env, join(REPO, `Pulumi.${env}.yaml`)]),
      ...Object.entries(FIXTURE_SAMPLES),
    ];
    for (const [env, stackFile] of stacks) {
      it(`${env}: every node's files match test/golden/${env}`, () => {
        const file = readStackFile(stackFile);
        const config = loadStackConfig(file.raw);
        // One node per role (first server, joining server, agent): the others differ only in
        // names and addresses, and reviewing six copies of a diff hides the one that matters.
        const kept = new Set(["first-server", "server", "agent"].map((role) => nodeContexts(config).find((c) => c.role === role)?.node.name));
        const names = new Set(config.nodes.map((n) => n.name));
        const tree = new Map([...renderTree(config, file.secrets)].filter(([path]) => !names.has(path.split("/")[0]!) || kept.has(path.split("/")[0]!)));
        const dir = join(GOLDEN, env);
        if (process.env.UPDATE_GOLDEN) {
          rmSync(dir, { recursive: true, force: true });
          for (const [path, content] of tree) {
            mkdirSync(dirname(join(dir, path)), { recursive: true });
            writeFileSync(join(dir, path), content);
          }
        }
        assert.ok(existsSync(dir), `missing ${dir}: run UPDATE_GOLDEN=1 npm test`);
        assert.deepEqual(listFiles(dir).sort(), [...tree.keys()].sort());
        for (const [path, content] of tree) assert.equal(content, readFileSync(join(dir, path), "utf8"), `${env}/${path}`);
      });
    }
  });

  describe("config.yaml", () => {
    it("first server initialises etcd; the others join it by address; agents join the API endpoint", () => {
      const first = configYaml("prod", 0);
      const second = configYaml("prod", 1);
      const agent = configYaml("prod", 3);
      assert.equal(first["cluster-init"], true);
      assert.equal(first.server, undefined);
      assert.equal(second["cluster-init"], undefined);
      assert.equal(second.server, "https://203.0.113.11:6443");
      assert.equal(agent.server, "https://k3s.prod.example.com:6443");
    });

    it("agents carry agent flags only (k3s agent refuses any other key)", () => {
      for (const env of ENVS) {
        const config = sampleConfig(env);
        for (const [i, node] of config.nodes.entries()) {
          const keys = Object.keys(configYaml(env, i));
          const allowed = node.role === "agent" ? AGENT_FLAG_SET : SERVER_FLAGS;
          for (const key of keys) assert.ok(allowed.has(key), `${env}/${node.name}: ${key} is not a ${node.role} flag`);
        }
      }
    });

    it("critical values are identical on every server", () => {
      const critical = ["cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "flannel-backend", "secrets-encryption", "disable"];
      const servers = [0, 1, 2].map((i) => configYaml("prod", i));
      for (const key of critical) for (const s of servers) assert.deepEqual(s[key], servers[0]![key], key);
    });

    it("CIS hardening sets the guide's server and kubelet arguments", () => {
      const server = configYaml("prod", 0);
      assert.equal(server["protect-kernel-defaults"], true);
      // The prod sample's release (v1.37.1+k3s1) has secrets-encryption-provider (v1.33.0+).
      const k3sManaged = loadStackConfig(variant("prod", (r) => {
        r.encryption = { provider: "secretbox" };
      }));
      const managed = parse(planNode(k3sManaged, k3sManaged.nodes[0]!).files[0]!.content) as Record<string, unknown>;
      assert.equal(managed["secrets-encryption"], true, "CIS turns K3s-managed encryption on by default");
      assert.equal(managed["secrets-encryption-provider"], "secretbox");
      const api = server["kube-apiserver-arg"] as string[];
      assert.ok(api.includes("enable-admission-plugins=NodeRestriction,EventRateLimit"));
      assert.ok(api.includes(`admission-control-config-file=${PATHS.psaYaml}`));
      assert.ok(api.includes(`audit-policy-file=${PATHS.auditYaml}`));
      assert.ok((server["kube-controller-manager-arg"] as string[]).includes("terminated-pod-gc-threshold=100"));
      assert.ok((configYaml("prod", 3)["kubelet-arg"] as string[]).includes("streaming-connection-idle-timeout=5m"));
      assert.equal(configYaml("dev", 0)["protect-kernel-defaults"], undefined);
    });

    it("typed kubelet/apiserver/controller-manager settings become process args", () => {
      const server = configYaml("staging", 0);
      assert.ok((server["kubelet-arg"] as string[]).includes("system-reserved=cpu=250m,memory=512Mi"));
      assert.ok((server["kube-apiserver-arg"] as string[]).includes("default-unreachable-toleration-seconds=60"));
      assert.ok((server["kube-controller-manager-arg"] as string[]).includes("node-monitor-grace-period=20s"));
    });

    it("extra flags append to lists and set scalars", () => {
      const config = loadStackConfig(variant("dev", (r) => (r.k3s!.extraServerConfig = { "kubelet-arg": ["image-gc-high-threshold=85"], "etcd-expose-metrics": true })));
      const yaml = parse(planNode(config, config.nodes[0]!).files[0]!.content) as Record<string, unknown>;
      assert.deepEqual(yaml["kubelet-arg"], ["eviction-hard=memory.available<200Mi,nodefs.available<10%", "image-gc-high-threshold=85"]);
      assert.equal(yaml["etcd-expose-metrics"], true);
    });

    it("node-role labels are kept out of node-label and applied after registration", () => {
      const config = sampleConfig("dev");
      const plan = planNode(config, config.nodes[1]!);
      const yaml = parse(plan.files[0]!.content) as Record<string, unknown>;
      assert.deepEqual(yaml["node-label"], ["example.com/tier=apps"]);
      assert.deepEqual(plan.postRegistrationLabels, { "node-role.kubernetes.io/worker": "true" });
    });
  });

  describe("secrets", () => {
    it("no staged file contains a secret; the drop-in carries the token", () => {
      const config = sampleConfig("prod");
      const secrets = { token: "TOKEN-VALUE-123", agentToken: "AGENT-TOKEN-456" };
      for (const nodePlan of planCluster(config).nodes) {
        for (const f of nodePlan.files) assert.ok(!f.content.includes("TOKEN-VALUE"), `${nodePlan.node.name}/${f.name}`);
        const dropIn = parse(nodePlan.secretFiles[0]!.render(secrets)) as Record<string, string>;
        if (nodePlan.node.role === "agent") assert.deepEqual(dropIn, { token: "AGENT-TOKEN-456" });
        else assert.deepEqual(dropIn, { "token": "TOKEN-VALUE-123", "agent-token": "AGENT-TOKEN-456" });
      }
    });

    it("registries.yaml becomes a secret file when registry credentials exist", () => {
      const config = sampleConfig("staging");
      const plain = planNode(config, config.nodes[0]!);
      assert.ok(plain.files.some((f) => f.name === "registries.yaml"));
      const withAuth = planNode(config, config.nodes[0]!, { hasRegistryAuth: true });
      assert.ok(!withAuth.files.some((f) => f.name === "registries.yaml"));
      const registries = withAuth.secretFiles.find((f) => f.name === "registries")!;
      const doc = parse(registries.render({ token: "t", registryAuth: { "registry.example.com": { username: "u", password: "p" } } })) as {
        configs: Record<string, { auth?: unknown; tls?: unknown }>;
        mirrors: Record<string, unknown>;
      };
      assert.deepEqual(doc.configs["registry.example.com"]!.auth, { username: "u", password: "p" });
      assert.deepEqual(doc.configs["registry.example.com"]!.tls, { ca_file: "/etc/ssl/certs/example-ca.pem" });
      assert.deepEqual(Object.keys(doc.mirrors), Object.keys(config.k3s.registries!.mirrors));
    });

    it("render output shows placeholders naming the secret key", () => {
      const tree = renderTree(sampleConfig("dev"), new Set());
      assert.match(tree.get("dev-server-1/secrets/secrets-dropin")!, new RegExp(placeholder("token").replace(/[<>:]/g, ".")));
    });
  });

  describe("install invocation", () => {
    it("pins the version, air-gaps, and passes the proxy to the install script", () => {
      const prod = sampleConfig("prod");
      assert.deepEqual(installEnv(prod, prod.nodes[0]!), {
        INSTALL_K3S_EXEC: "server",
        INSTALL_K3S_VERSION: "v1.37.1+k3s1",
        INSTALL_K3S_SKIP_DOWNLOAD: "true",
        INSTALL_K3S_BIN_DIR: "/usr/local/bin",
      });
      const staging = sampleConfig("staging");
      const env = installEnv(staging, staging.nodes[1]!);
      assert.equal(env.INSTALL_K3S_EXEC, "agent");
      assert.equal(env.HTTPS_PROXY, "http://proxy.example.com:3128");
      for (const part of ["10.52.0.0/16", "10.53.0.0/16", ".svc", ".cluster.local", "198.51.100.0/24"]) assert.ok(env.NO_PROXY!.split(",").includes(part), part);
    });

    it("a channel stack exports neither the channel nor a version: apply.sh exports the cluster's release (issue 28)", () => {
      const config = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
      const env = installEnv(config, config.nodes[0]!);
      assert.equal(env.INSTALL_K3S_CHANNEL, undefined, "a changed channel value must not change install-k3s.sh (every node's fingerprint)");
      assert.equal(env.INSTALL_K3S_VERSION, undefined);
    });

    it("a changed k3s.channel restarts no node (what a change costs, plan/churn.ts; review of issue 28)", () => {
      const onChannel = (channel: string) => loadStackConfig(variant("staging", (r) => Object.assign(r.k3s!, { version: undefined, channel })));
      const cost = churn(onChannel("stable"), onChannel("latest"));
      assert.deepEqual(cost.restart, []);
      assert.deepEqual(cost.restartingSteps, []);
    });

    it("an agent-wide change costs a channel stack what it costs a pinned one: the agents restart, each drained by its batch's two steps on the first server (issue 26)", () => {
      const stack = (channel: boolean, labels: boolean) =>
        loadStackConfig(
          variant("staging", (r) => {
            if (channel) Object.assign(r.k3s!, { version: undefined, channel: "stable" });
            r.upgrade = { maxUnavailable: 1 };
            if (labels) for (const n of r.nodes.filter((n) => n.role === "agent")) n.labels = { ...n.labels, "example.com/tier": "batch" };
          }),
        );
      const [pinned, onChannel] = [false, true].map((channel) => churn(stack(channel, false), stack(channel, true)));
      assert.deepEqual(onChannel!.restart, ["stg-agent-1", "stg-agent-2"]);
      assert.deepEqual(onChannel!.steps, ["agent-batch-1-drain", "agent-batch-1-uncordon", "agent-batch-2-drain", "agent-batch-2-uncordon"]);
      assert.deepEqual(onChannel, pinned);
    });
  });

  describe("CIS files", () => {
    it("psa.yaml configures PodSecurity restricted and EventRateLimit; only servers get it", () => {
      const config = sampleConfig("prod");
      const server = planNode(config, config.nodes[0]!);
      const psa = parse(server.files.find((f) => f.name === "psa.yaml")!.content) as { plugins: Array<{ name: string; configuration: { defaults?: Record<string, string> } }> };
      assert.deepEqual(psa.plugins.map((p) => p.name), ["PodSecurity", "EventRateLimit"]);
      assert.equal(psa.plugins[0]!.configuration.defaults!.enforce, "restricted");
      assert.ok(!planNode(config, config.nodes[3]!).files.some((f) => f.name === "psa.yaml"));
      const os = server.files.find((f) => f.name === "os-prep.sh")!.content;
      assert.match(os, /vm\.overcommit_memory = 1/);
      assert.match(os, /kernel\.panic_on_oops = 1/);
    });
  });

  describe("kubeconfig", () => {
    it("points at the API endpoint and names everything after the cluster", () => {
      const doc = parse(rewriteKubeconfig(SAMPLE_KUBECONFIG, "k3s.prod.example.com", "prod")) as {
        clusters: Array<{ name: string; cluster: { server: string; "certificate-authority-data": string } }>;
        "current-context": string;
      };
      assert.equal(doc.clusters[0]!.cluster.server, "https://k3s.prod.example.com:6443");
      assert.equal(doc.clusters[0]!.name, "prod");
      assert.equal(doc.clusters[0]!.cluster["certificate-authority-data"], "Q0EgREFUQQ==");
      assert.equal(doc["current-context"], "prod");
    });
  });

  describe("triggers", () => {
    it("a change to one agent changes only that agent's apply hash", () => {
      const before = planCluster(sampleConfig("prod"));
      const after = planCluster(loadStackConfig(variant("prod", (r) => (r.nodes[4]!.labels = { ...r.nodes[4]!.labels, "example.com/gpu": "true" }))));
      const changed = after.nodes.filter((n, i) => n.hashes.apply !== before.nodes[i]!.hashes.apply).map((n) => n.node.name);
      assert.deepEqual(changed, ["prod-agent-2"]);
      assert.deepEqual(after.nodes.map((n) => n.hashes.osPrep), before.nodes.map((n) => n.hashes.osPrep));
    });

    it("a server-wide change re-applies every server and no agent", () => {
      const before = planCluster(sampleConfig("prod"));
      const after = planCluster(loadStackConfig(variant("prod", (r) => (r.k3s!.etcdSnapshots = { ...r.k3s!.etcdSnapshots, retention: 30 }))));
      const changed = after.nodes.filter((n, i) => n.hashes.apply !== before.nodes[i]!.hashes.apply).map((n) => n.node.name);
      assert.deepEqual(changed, ["prod-server-1", "prod-server-2", "prod-server-3"]);
    });

    it("a firewall change re-runs OS prep but not the K3s apply", () => {
      const before = planCluster(sampleConfig("prod"));
      const after = planCluster(
        loadStackConfig(
          variant("prod", (r) => {
            r.k3s!.firewall = { mode: "disable" };
            r.k3s!.exceptions = [{ setting: "firewall.mode=disable", reason: "a test of what a firewall change re-runs, not a stack" }];
          }),
        ),
      );
      after.nodes.forEach((n, i) => {
        assert.notEqual(n.hashes.osPrep, before.nodes[i]!.hashes.osPrep);
        assert.equal(n.hashes.apply, before.nodes[i]!.hashes.apply);
      });
    });
  });
});
