import { strict as assert } from "node:assert";
import { StackInput } from "../../../components/config/schema";
import { ConfigError, formatPath } from "../../../components/config/validate";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { ENVS, sampleConfig, variant } from "../../helpers/samples";

type Node = StackInput["nodes"][number];

/** Asserts the config is rejected with an issue at exactly `path` whose message matches. */
function rejects(raw: StackInput, path: string, message: RegExp): void {
  const result = parseStackConfig(raw);
  assert.equal(result.ok, false, `expected ${path} to be rejected`);
  if (result.ok) return;
  const hit = result.issues.find((i) => i.path === path);
  assert.ok(hit, `no issue at ${path}; got:\n${result.issues.map((i) => `${i.path}: ${i.message}`).join("\n")}`);
  assert.match(hit.message, message);
}

function k3s(raw: StackInput): NonNullable<StackInput["k3s"]> {
  raw.k3s ??= {};
  return raw.k3s;
}

describe("stack configuration", () => {
  for (const env of ENVS) {
    it(`accepts the ${env} sample`, () => {
      const config = sampleConfig(env);
      assert.equal(config.environment, env);
    });
  }

  it("resolves hardening by environment: cis in prod, none in dev", () => {
    assert.equal(sampleConfig("dev").k3s.hardening, "none");
    const prodWithoutHardening = variant("prod", (raw) => delete k3s(raw).hardening);
    assert.equal(loadStackConfig(prodWithoutHardening).k3s.hardening, "cis");
  });

  it("formats paths the way Pulumi users write config keys", () => {
    assert.equal(formatPath(["nodes", 2, "labels"]), "k3s-platform:nodes[2].labels");
    assert.equal(formatPath(["nodes", 0, "labels", "kubernetes.io/role"]), 'k3s-platform:nodes[0].labels["kubernetes.io/role"]');
  });

  it("throws a ConfigError listing every problem", () => {
    const raw = variant("dev", (r) => {
      k3s(r).clusterCidr = "nonsense";
      (r.nodes[0] as Node).name = "Bad_Name";
    });
    assert.throws(() => loadStackConfig(raw), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.issues.length, 2);
      assert.match(err.message, /k3s-platform:k3s\.clusterCidr/);
      assert.match(err.message, /k3s-platform:nodes\[0\] \(Bad_Name\)\.name/);
      return true;
    });
  });

  describe("one rule each", () => {
    it("rejects an invalid CIDR", () =>
      rejects(variant("dev", (r) => (k3s(r).serviceCidr = "10.43.0.0/33")), "k3s-platform:k3s.serviceCidr", /not a CIDR/));

    it("rejects overlapping cluster and service CIDRs", () =>
      rejects(
        variant("dev", (r) => Object.assign(k3s(r), { clusterCidr: "10.0.0.0/8", serviceCidr: "10.43.0.0/16" })),
        "k3s-platform:k3s.serviceCidr",
        /overlaps clusterCidr 10\.0\.0\.0\/8/,
      ));

    it("rejects clusterDns outside serviceCidr", () =>
      rejects(variant("dev", (r) => (k3s(r).clusterDns = "10.42.0.10")), "k3s-platform:k3s.clusterDns", /outside serviceCidr/));

    it("rejects a node address inside the pod network", () =>
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).nodeIp = "10.42.3.4")), "k3s-platform:nodes[1] (dev-agent-1).nodeIp", /inside k3s\.clusterCidr/));

    it("rejects duplicate node names", () =>
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).name = "dev-server-1")), "k3s-platform:nodes[1] (dev-server-1).name", /duplicate node name/));

    it("rejects duplicate hosts", () =>
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).host = "192.0.2.10")), "k3s-platform:nodes[1] (dev-agent-1).host", /duplicate host/));

    it("allows two nodes on one host when their SSH ports differ", () => {
      const raw = variant("dev", (r) => {
        (r.nodes[1] as Node).host = "192.0.2.10";
        (r.nodes[1] as Node).ssh = { port: 2222 };
      });
      assert.equal(parseStackConfig(raw).ok, true);
    });

    it("rejects a cluster without a server", () =>
      rejects(variant("dev", (r) => ((r.nodes[0] as Node).role = "agent")), "k3s-platform:nodes", /role: server/));

    it("rejects restricted kubernetes.io labels, naming the label", () =>
      rejects(
        variant("dev", (r) => ((r.nodes[1] as Node).labels = { "kubernetes.io/role": "worker" })),
        'k3s-platform:nodes[1] (dev-agent-1).labels["kubernetes.io/role"]',
        /NodeRestriction/,
      ));

    it("rejects restricted k8s.io labels", () =>
      rejects(
        variant("dev", (r) => ((r.nodes[1] as Node).labels = { "foo.k8s.io/x": "y" })),
        'k3s-platform:nodes[1] (dev-agent-1).labels["foo.k8s.io/x"]',
        /NodeRestriction/,
      ));

    it("allows the labels K3s allows (kubelet-settable and node-role)", () => {
      const raw = variant("dev", (r) => {
        (r.nodes[1] as Node).labels = {
          "topology.kubernetes.io/zone": "a",
          "node.kubernetes.io/instance-type": "m5",
          "node-role.kubernetes.io/worker": "true",
          "node-restriction.kubernetes.io/pci": "true",
        };
      });
      assert.equal(parseStackConfig(raw).ok, true);
    });

    it("rejects an invalid label value", () =>
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).labels = { "example.com/x": "has space" })), 'k3s-platform:nodes[1] (dev-agent-1).labels["example.com/x"]', /label value/));

    it("rejects bad taint syntax", () =>
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).taints = ["gpu=true:Sometimes"])), "k3s-platform:nodes[1] (dev-agent-1).taints[0]", /NoSchedule/));

    it("accepts taints with and without a value", () => {
      const raw = variant("dev", (r) => ((r.nodes[1] as Node).taints = ["dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"]));
      assert.equal(parseStackConfig(raw).ok, true);
    });

    it("rejects unknown k3s flags in extraServerConfig", () =>
      rejects(variant("dev", (r) => (k3s(r).extraServerConfig = { "no-such-flag": true })), 'k3s-platform:k3s.extraServerConfig["no-such-flag"]', /not a k3s server flag/));

    it("rejects server-only flags in extraAgentConfig (k3s agent would not start)", () =>
      rejects(variant("dev", (r) => (k3s(r).extraAgentConfig = { "etcd-expose-metrics": true })), 'k3s-platform:k3s.extraAgentConfig["etcd-expose-metrics"]', /server-only/));

    it("accepts real agent flags in extraAgentConfig", () => {
      const raw = variant("dev", (r) => (k3s(r).extraAgentConfig = { "kube-proxy-arg": ["metrics-bind-address=0.0.0.0"], "pause-image": "registry.example.com/pause:3.9" }));
      assert.equal(parseStackConfig(raw).ok, true);
    });

    it("points managed flags at their typed key", () =>
      rejects(variant("dev", (r) => (k3s(r).extraServerConfig = { "cluster-cidr": "10.1.0.0/16" })), 'k3s-platform:k3s.extraServerConfig["cluster-cidr"]', /set k3s\.clusterCidr instead/));

    it("rejects sqlite with more than one server", () =>
      rejects(
        variant("dev", (r) => {
          k3s(r).datastore = { type: "sqlite" };
          (r.nodes[1] as Node).role = "server";
        }),
        "k3s-platform:k3s.datastore",
        /sqlite supports a single server/,
      ));

    it("rejects a channel in prod", () =>
      rejects(variant("prod", (r) => Object.assign(k3s(r), { version: undefined, channel: "stable" })), "k3s-platform:k3s.channel", /prod must pin/));

    it("accepts a channel outside prod", () => {
      const raw = variant("staging", (r) => Object.assign(k3s(r), { version: undefined, channel: "stable" }));
      assert.equal(parseStackConfig(raw).ok, true);
    });

    it("rejects a version that is not an exact K3s release", () =>
      rejects(variant("dev", (r) => (k3s(r).version = "1.31")), "k3s-platform:k3s.version", /exact K3s release/));

    it("rejects air-gap without an exact version", () =>
      rejects(
        variant("staging", (r) => Object.assign(k3s(r), { version: undefined, channel: "stable", airgap: { enabled: true } })),
        "k3s-platform:k3s.version",
        /air-gap/,
      ));

    it("rejects unknown keys with their path", () =>
      rejects(variant("dev", (r) => ((k3s(r) as Record<string, unknown>).clusterCIDR = "10.1.0.0/16")), "k3s-platform:k3s", /unknown key\(s\): clusterCIDR/));

    it("rejects a malformed SSH host key", () =>
      rejects(variant("dev", (r) => ((r.nodes[0] as Node).ssh = { hostKey: "AAAA" })), "k3s-platform:nodes[0] (dev-server-1).ssh.hostKey", /OpenSSH public key/));
  });
});
