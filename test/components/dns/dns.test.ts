import { strict as assert } from "node:assert";
import { parse } from "yaml";
import { parseStackConfig, loadStackConfig } from "../../../components/stack/load";
import {
  autoscalerParams,
  checkCorefile,
  corednsCustomData,
  linearReplicas,
  nodeLocalCorefile,
  renderDns,
  renderDnsAutoscaler,
  renderNodeLocalDns,
} from "../../../components/dns/render";
import { PATCH_FORCE } from "../../../components/dns/render";
import { planNode } from "../../../components/plan/node";
import { ENVS, sampleConfig, variant } from "../../helpers/samples";

describe("CoreDNS tuning", () => {
  it("every coredns-custom fragment of every sample parses as Corefile blocks", () => {
    for (const env of ENVS) {
      for (const [key, text] of Object.entries(corednsCustomData(sampleConfig(env)))) {
        const kind = key.endsWith(".server") ? "server" : "override";
        assert.ok(key.endsWith(".server") || key.endsWith(".override"), key);
        assert.deepEqual(checkCorefile(text, kind), [], `${env} ${key}:\n${text}`);
      }
    }
  });

  it("the Corefile check catches unbalanced braces, unknown plugins and duplicates of K3s' main block", () => {
    assert.match(checkCorefile("example.com:53 {\n    errors\n", "server")[0]!.message, /unclosed/);
    assert.match(checkCorefile("example.com:53 {\n    frobnicate\n}\n", "server")[0]!.message, /unknown plugin/);
    assert.match(checkCorefile("cache 60\n", "override")[0]!.message, /already in K3s' main block/);
    assert.match(checkCorefile("}\n", "override")[0]!.message, /unbalanced/);
    assert.deepEqual(checkCorefile("log\n", "override"), []);
  });

  it("stub domains get their own server block with forward and cache tuning", () => {
    const data = corednsCustomData(sampleConfig("prod"));
    assert.equal(
      data["corp.example.com.server"],
      [
        "corp.example.com:53 {",
        "    errors",
        "    cache {",
        "        success 9984 60",
        "        denial 9984 10",
        "        prefetch 10 1m 20%",
        "        serve_stale 1h",
        "    }",
        "    forward . 203.0.113.53 203.0.113.54 {",
        "        max_concurrent 1000",
        "        policy round_robin",
        "        health_check 0.5s",
        "    }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("host entries are served from their own zone; query logging is the only override", () => {
    const data = corednsCustomData(loadStackConfig(variant("dev", (r) => (r.dns = { ...r.dns, log: true }))));
    assert.match(data["k3s-platform-hosts.server"]!, /registry\.dev\.example\.com:53 \{\n {4}errors\n {4}hosts \{\n {8}192\.0\.2\.50 registry\.dev\.example\.com/);
    assert.equal(data["log.override"], "log\n");
    assert.deepEqual(Object.keys(data).filter((k) => k.endsWith(".override")), ["log.override"]);
  });

  it("never touches the coredns ConfigMap", () => {
    for (const env of ENVS) assert.ok(!renderDns(sampleConfig(env)).some((o) => o.kind === "ConfigMap" && o.metadata.name === "coredns"));
  });

  it("upstreams reach CoreDNS through the kubelet resolv.conf on every node", () => {
    const config = sampleConfig("staging");
    for (const node of config.nodes) {
      const plan = planNode(config, node);
      const yaml = parse(plan.files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
      assert.equal(yaml["resolv-conf"], "/etc/rancher/k3s/resolv.conf");
      assert.equal(plan.files.find((f) => f.name === "resolv.conf")!.content.split("\n").filter((l) => l.startsWith("nameserver")).join(","), "nameserver 198.51.100.53,nameserver 198.51.100.54");
    }
    assert.ok(!planNode(sampleConfig("dev"), sampleConfig("dev").nodes[0]!).files.some((f) => f.name === "resolv.conf"));
  });

  describe("validation", () => {
    it("rejects an upstream inside the service network (a forwarding loop)", () => {
      const r = parseStackConfig(variant("staging", (raw) => (raw.dns!.upstreams = ["10.53.0.10"])));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:dns.upstreams[0]"));
    });

    it("rejects bad stub domain servers and DNS settings when CoreDNS is disabled", () => {
      const bad = parseStackConfig(variant("staging", (raw) => (raw.dns!.stubDomains = { "corp.example.com": { servers: ["not-an-ip"] } })));
      assert.equal(bad.ok, false);
      const off = parseStackConfig(variant("staging", (raw) => (raw.k3s!.disable = ["coredns"])));
      assert.equal(off.ok, false);
      if (!off.ok) assert.ok(off.issues.some((i) => i.path === "k3s-platform:dns"));
    });

    it("rejects a NodeLocal address outside link-local", () => {
      const r = parseStackConfig(variant("prod", (raw) => (raw.dns!.nodeLocal = { enabled: true, localIp: "10.0.0.10" })));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:dns.nodeLocal.localIp"));
    });
  });

  describe("NodeLocal DNSCache", () => {
    it("appears only when enabled", () => {
      assert.deepEqual(renderNodeLocalDns(sampleConfig("staging")), []);
      const kinds = renderNodeLocalDns(sampleConfig("prod")).map((o) => `${o.kind}/${o.metadata.name}`);
      assert.deepEqual(kinds, ["ServiceAccount/node-local-dns", "Service/kube-dns-upstream", "ConfigMap/node-local-dns", "DaemonSet/node-local-dns", "Service/node-local-dns"]);
    });

    it("binds the local address and the kube-dns IP, forwards cluster names over TCP, upstreams with options", () => {
      const corefile = nodeLocalCorefile(sampleConfig("prod"));
      assert.deepEqual(checkCorefile(corefile, "server"), []);
      assert.equal((corefile.match(/bind 169\.254\.20\.10 10\.43\.0\.10/g) ?? []).length, 4);
      assert.match(corefile, /cluster\.local:53 \{[\s\S]*?forward \. __PILLAR__CLUSTER__DNS__ \{\n\s+force_tcp/);
      assert.match(corefile, /\.:53 \{[\s\S]*forward \. 203\.0\.113\.53 203\.0\.113\.54 \{\n\s+max_concurrent 1000\n\s+policy sequential/);
      const ds = renderNodeLocalDns(sampleConfig("prod")).find((o) => o.kind === "DaemonSet")!;
      const container = (ds.spec as { template: { spec: { containers: Array<{ args: string[] }>; hostNetwork: boolean } } }).template.spec;
      assert.equal(container.hostNetwork, true);
      assert.deepEqual(container.containers[0]!.args.slice(0, 2), ["-localip", "169.254.20.10,10.43.0.10"]);
    });
  });

  describe("autoscaler", () => {
    it("renders linear params, RBAC and a Deployment targeting coredns", () => {
      const objects = renderDnsAutoscaler(sampleConfig("prod"));
      const cm = objects.find((o) => o.kind === "ConfigMap")!;
      assert.deepEqual(JSON.parse((cm.data as { linear: string }).linear), {
        coresPerReplica: 256, nodesPerReplica: 16, min: 2, max: 10, preventSinglePointFailure: true, includeUnschedulableNodes: true,
      });
      const role = objects.find((o) => o.kind === "ClusterRole")!;
      const rules = role.rules as Array<{ resources: string[]; verbs: string[] }>;
      assert.ok(rules.some((r) => r.resources.includes("nodes") && r.verbs.includes("watch")));
      assert.ok(rules.some((r) => r.resources.includes("deployments/scale") && r.verbs.includes("update")));
      const deploy = JSON.stringify(objects.find((o) => o.kind === "Deployment"));
      assert.match(deploy, /--target=Deployment\/coredns/);
      assert.deepEqual(renderDnsAutoscaler(sampleConfig("dev")), []);
    });

    it("linear mode: max(ceil(cores/cpr), ceil(nodes/npr)) clamped to [min, max], two when spread", () => {
      const params = autoscalerParams(sampleConfig("prod"));
      assert.equal(linearReplicas(params, 64, 6), 2); // ceil(64/256)=1, ceil(6/16)=1 → min 2
      assert.equal(linearReplicas(params, 1024, 40), 4); // ceil(1024/256)=4, ceil(40/16)=3
      assert.equal(linearReplicas(params, 8192, 500), 10); // capped by max
    });
  });

  it("objects in kube-system (not ours): only coredns-custom takes over conflicting fields (patchForce); the rest stop on a conflict", () => {
    for (const env of ENVS) {
      for (const obj of renderDns(sampleConfig(env))) {
        const force = obj.metadata.annotations?.[PATCH_FORCE] === "true";
        assert.equal(force, obj.kind === "ConfigMap" && obj.metadata.name === "coredns-custom", `${env}: ${obj.kind} ${obj.metadata.namespace ?? ""}/${obj.metadata.name}`);
      }
    }
  });
});
