import { strict as assert } from "node:assert";
import { parseQuantity } from "../../../components/config/quantity";
import { parseStackConfig, loadStackConfig } from "../../../components/stack/load";
import { KubeObject } from "../../../components/kube/objects";
import { renderTenant, renderTenants } from "../../../components/tenants/render";
import { ENVS, sampleConfig, variant } from "../../helpers/samples";

type Spec = Record<string, unknown>;
const spec = (o: KubeObject) => o.spec as Spec;

function tenantObjects(env: (typeof ENVS)[number], namespace: string): KubeObject[] {
  const config = sampleConfig(env);
  return renderTenant(config, config.tenants.find((t) => t.namespace === namespace)!);
}

function policyNamed(objects: KubeObject[], name: string): Spec {
  const p = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === name);
  assert.ok(p, `no NetworkPolicy ${name}`);
  return spec(p);
}

describe("tenant namespaces", () => {
  describe("quantities", () => {
    it("parses Kubernetes quantities", () => {
      const cases: Array<[string, number]> = [["500m", 0.5], ["2", 2], ["1Gi", 2 ** 30], ["512Mi", 512 * 2 ** 20], ["1k", 1000], ["1e3", 1000], ["0.5", 0.5]];
      for (const [text, value] of cases) assert.equal(parseQuantity(text), value, text);
      for (const bad of ["1GB", "abc", "", "1.2.3", "5 Mi"]) assert.equal(parseQuantity(bad), undefined, bad);
    });

    it("rejects malformed quantities with their path", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.tenants![0]!.quota!.requestsMemory = "4GB")));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:tenants[0] (apps).quota.requestsMemory" && /quantity/.test(i.message)));
    });

    it("rejects requests above limits", () => {
      const r = parseStackConfig(variant("dev", (raw) => Object.assign(raw.tenants![0]!.quota!, { requestsCpu: "8", limitsCpu: "4" })));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:tenants[0] (apps).quota.requestsCpu" && /exceeds limits\.cpu/.test(i.message)));
    });

    it("rejects a default outside min/max", () => {
      const r = parseStackConfig(
        variant("dev", (raw) => (raw.tenants![0]!.limits = { container: { default: { memory: "8Gi" }, max: { memory: "4Gi" } } })),
      );
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:tenants[0] (apps).limits.container.max.memory" && /default 8Gi is above max 4Gi/.test(i.message)));
    });
  });

  describe("environment rules", () => {
    it("prod requires quota, limits and default-deny for every tenant", () => {
      const r = parseStackConfig(variant("prod", (raw) => {
        delete raw.tenants![1]!.quota;
        delete raw.tenants![1]!.limits;
        raw.tenants![1]!.network = { defaultDeny: false };
      }));
      assert.equal(r.ok, false);
      if (!r.ok) {
        const paths = r.issues.map((i) => i.path);
        assert.ok(paths.includes("k3s-platform:tenants[1] (web).quota"));
        assert.ok(paths.includes("k3s-platform:tenants[1] (web).limits"));
        assert.ok(paths.includes("k3s-platform:tenants[1] (web).network.defaultDeny"));
      }
    });

    it("prod quotas must bound cpu and memory", () => {
      const r = parseStackConfig(variant("prod", (raw) => (raw.tenants![1]!.quota = { pods: 10 })));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.issues.filter((i) => i.path === "k3s-platform:tenants[1] (web).quota").length, 2);
    });

    it("dev accepts a tenant without quota or limits", () => {
      const config = loadStackConfig(variant("dev", (raw) => (raw.tenants = [{ namespace: "scratch" }])));
      const kinds = renderTenants(config).map((o) => o.kind);
      assert.ok(!kinds.includes("ResourceQuota") && !kinds.includes("LimitRange"));
    });

    it("rejects system namespaces", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.tenants = [{ namespace: "kube-system" }])));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:tenants[0] (kube-system).namespace" && /system and Pod-Security-exempt namespaces/.test(i.message)));
    });

    it("rejects duplicate tenant namespaces", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.tenants = [{ namespace: "a" }, { namespace: "b" }, { namespace: "a" }])));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.issues.some((i) => i.path === "k3s-platform:tenants[2] (a).namespace" && /duplicate/.test(i.message)));
    });

    it("rejects an allow with no peer (it would allow everything)", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.tenants![0]!.network = { allows: [{ name: "oops" }] })));
      assert.equal(r.ok, false);
    });
  });

  it("every sample tenant yields one Namespace, one ResourceQuota, one LimitRange, a default deny and a DNS allow", () => {
    for (const env of ENVS) {
      const config = sampleConfig(env);
      for (const t of config.tenants) {
        const objects = renderTenant(config, t);
        const count = (kind: string) => objects.filter((o) => o.kind === kind).length;
        assert.equal(count("Namespace"), 1, `${env}/${t.namespace}`);
        assert.equal(count("ResourceQuota"), 1);
        assert.equal(count("LimitRange"), 1);
        assert.ok(objects.some((o) => o.metadata.name === "default-deny"));
        assert.ok(objects.some((o) => o.metadata.name === "allow-dns"));
        for (const o of objects.slice(1)) assert.equal(o.metadata.namespace, t.namespace);
      }
    }
  });

  it("Namespace carries Pod Security labels and the tenant's labels", () => {
    const ns = tenantObjects("staging", "team-a")[0]!;
    assert.equal(ns.metadata.labels!["pod-security.kubernetes.io/enforce"], "restricted");
    assert.equal(ns.metadata.labels!["example.com/team"], "a");
  });

  it("ResourceQuota maps every field, per-StorageClass storage and the PriorityClass scope", () => {
    const config = loadStackConfig(variant("prod", (raw) => (raw.tenants![0]!.quota!.priorityClass = "high")));
    const rq = renderTenant(config, config.tenants[0]!).find((o) => o.kind === "ResourceQuota")!;
    const hard = spec(rq).hard as Record<string, string>;
    assert.equal(hard["requests.cpu"], "16");
    assert.equal(hard["limits.memory"], "64Gi");
    assert.equal(hard["services.loadbalancers"], "0");
    assert.equal(hard["services.nodeports"], "0");
    assert.equal(hard["local-path.storageclass.storage.k8s.io/requests.storage"], "100Gi");
    assert.equal(hard["local-path.storageclass.storage.k8s.io/persistentvolumeclaims"], "10");
    assert.deepEqual(spec(rq).scopeSelector, { matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["high"] }] });
  });

  it("LimitRange has container defaults and PVC bounds", () => {
    const lr = tenantObjects("prod", "payments").find((o) => o.kind === "LimitRange")!;
    const [container, pvc] = spec(lr).limits as Array<Record<string, unknown>>;
    assert.deepEqual(container!.default, { cpu: "1", memory: "1Gi" });
    assert.deepEqual(container!.maxLimitRequestRatio, { cpu: "10" });
    assert.deepEqual(pvc, { type: "PersistentVolumeClaim", min: { storage: "1Gi" }, max: { storage: "100Gi" } });
  });

  describe("network policies", () => {
    it("default deny covers ingress and egress for all pods", () => {
      assert.deepEqual(policyNamed(tenantObjects("dev", "apps"), "default-deny"), { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    });

    it("DNS allow targets kube-dns in kube-system by kubernetes.io/metadata.name, TCP and UDP 53", () => {
      const dns = policyNamed(tenantObjects("dev", "apps"), "allow-dns");
      assert.deepEqual(dns.egress, [{
        to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
      }]);
    });

    it("with NodeLocal DNSCache the DNS allow also reaches the link-local and kube-dns addresses", () => {
      const to = (policyNamed(tenantObjects("prod", "web"), "allow-dns").egress as Array<{ to: unknown[] }>)[0]!.to;
      assert.deepEqual(to.slice(1), [{ ipBlock: { cidr: "169.254.20.10/32" } }, { ipBlock: { cidr: "10.43.0.10/32" } }]);
    });

    it("allows Traefik only when it runs (dev disables it) and metrics-server when it runs", () => {
      const dev = tenantObjects("dev", "apps").map((o) => o.metadata.name);
      assert.ok(!dev.includes("allow-ingress-controller"));
      assert.ok(dev.includes("allow-metrics-server"));
      const staging = tenantObjects("staging", "team-a").map((o) => o.metadata.name);
      assert.ok(staging.includes("allow-ingress-controller"));
    });

    it("renders named extra allows and the NFLOG annotations", () => {
      const objects = tenantObjects("staging", "team-a");
      assert.deepEqual(policyNamed(objects, "allow-from-team-b").ingress, [{
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "team-b" } } }],
        ports: [{ protocol: "TCP", port: 8080 }],
      }]);
      assert.deepEqual(policyNamed(objects, "allow-to-postgres").egress, [{ to: [{ ipBlock: { cidr: "198.51.100.40/32" } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
      for (const p of objects.filter((o) => o.kind === "NetworkPolicy")) {
        assert.deepEqual(p.metadata.annotations, { "kube-router.io/netpol-nflog-limit": "20/minute", "kube-router.io/netpol-nflog-limit-burst": "20" });
      }
    });

    it("API server egress goes to the server node addresses on 6443", () => {
      const config = loadStackConfig(variant("prod", (raw) => (raw.tenants![0]!.network!.allowApiServer = true)));
      const objects = renderTenant(config, config.tenants[0]!);
      const egress = policyNamed(objects, "allow-apiserver").egress as Array<{ to: unknown[]; ports: unknown[] }>;
      assert.deepEqual(egress[0]!.to, ["203.0.113.11", "203.0.113.12", "203.0.113.13"].map((ip) => ({ ipBlock: { cidr: `${ip}/32` } })));
      assert.deepEqual(egress[0]!.ports, [{ protocol: "TCP", port: 6443 }]);
    });
  });
});
