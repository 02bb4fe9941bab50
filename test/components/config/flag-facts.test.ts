import { strict as assert } from "node:assert";
import { hasFeature, KUBELET_REFUSES_CGROUP_V1, missingFeature, releaseOf, S3_RETENTION, SERVICELB_MULTIPLE_POOLS, Since, WRITE_KUBECONFIG_NAME } from "../../../components/config/flags";
import { StackInput } from "../../../components/config/schema";
import { parseStackConfig } from "../../../components/stack/load";
import { variant } from "../../helpers/samples";

const at = (version: string) => releaseOf({ version })!;
const k3s = (raw: StackInput) => raw.k3s as NonNullable<StackInput["k3s"]>;

describe("facts per flag and value (components/config/flags.ts)", () => {
  it("Since.until: a flag removed on a line is missing from that patch on, and on every newer line", () => {
    // Not a K3s fact: the mechanism, on a made-up removal at v1.36.2 (the release notes searched for
    // v1.32–v1.37 name no removed or renamed server/agent flag).
    const removed: Since = { lines: {}, source: "predates v1.30", until: { lines: { 36: 2 }, source: "example", use: "use --other instead" } };
    assert.equal(hasFeature(removed, at("v1.36.1+k3s1")), true);
    assert.equal(hasFeature(removed, at("v1.35.9+k3s1")), true);
    assert.equal(hasFeature(removed, at("v1.36.2+k3s1")), false);
    assert.equal(hasFeature(removed, at("v1.37.0+k3s1")), false);
    assert.equal(missingFeature(removed, at("v1.37.0+k3s1")), "was removed from K3s in v1.36.2 (example); use --other instead (pinned v1.37.0+k3s1)");
    const both: Since = { lines: { 33: 4 }, source: "added", until: { lines: { 36: 0 }, source: "removed" } };
    assert.deepEqual(["v1.33.3+k3s1", "v1.33.4+k3s1", "v1.35.1+k3s1", "v1.36.0+k3s1"].map((v) => hasFeature(both, at(v))), [false, true, true, false]);
  });

  it("etcd-s3-retention: v1.32.8+ / v1.33.4+ and every later line (release notes #12695, #12694); not on v1.31", () => {
    assert.deepEqual(["v1.31.14+k3s1", "v1.32.7+k3s1", "v1.32.8+k3s1", "v1.33.3+k3s1", "v1.33.4+k3s1", "v1.37.1+k3s1"].map((v) => hasFeature(S3_RETENTION, at(v))), [false, false, true, false, true, true]);
    const pinned = (version: string) => parseStackConfig(variant("dev", (r) => Object.assign(k3s(r), { version, extraServerConfig: { ...k3s(r).extraServerConfig, "etcd-s3-retention": 10 } })));
    const old = pinned("v1.33.3+k3s1");
    assert.ok(!old.ok);
    assert.ok(old.issues.some((i) => i.path === 'k3s-platform:k3s.extraServerConfig["etcd-s3-retention"]' && /needs K3s v1\.33\.4\+ on the v1\.33 line \(pinned v1\.33\.3\+k3s1\)/.test(i.message)), JSON.stringify(old.issues));
    const current = pinned("v1.37.1+k3s1");
    assert.ok(current.ok, current.ok ? "" : JSON.stringify(current.issues));
  });

  it("write-kubeconfig-name: new in v1.37.0 (k3s-io/k3s#14440)", () => {
    assert.equal(hasFeature(WRITE_KUBECONFIG_NAME, at("v1.36.3+k3s1")), false);
    assert.equal(hasFeature(WRITE_KUBECONFIG_NAME, at("v1.37.0+k3s1")), true);
    const r = parseStackConfig(variant("dev", (raw) => Object.assign(k3s(raw), { version: "v1.36.3+k3s1", extraServerConfig: { "write-kubeconfig-name": "edge" } })));
    assert.ok(!r.ok && r.issues.some((i) => /"write-kubeconfig-name" needs K3s v1\.37\.0\+ \(not on the v1\.36 line; first in v1\.37\.0\) \(pinned v1\.36\.3\+k3s1\)/.test(i.message)), JSON.stringify(r));
  });

  it("ServiceLB: one pool per node before v1.37.1 (k3s-io/k3s#14547); the refusal says which applies", () => {
    assert.equal(hasFeature(SERVICELB_MULTIPLE_POOLS, at("v1.37.0+k3s1")), false);
    assert.equal(hasFeature(SERVICELB_MULTIPLE_POOLS, at("v1.37.1+k3s1")), true);
    const twoPools = (version: string) =>
      parseStackConfig(variant("staging", (raw) => Object.assign(k3s(raw), { version, serviceLb: { pools: { edge: ["stg-agent-1"], internal: ["stg-agent-1"] } } })));
    const old = twoPools("v1.36.3+k3s1");
    assert.ok(!old.ok);
    assert.match(old.issues.find((i) => i.path === "k3s-platform:k3s.serviceLb.pools.internal[0]")!.message, /more than one pool per node needs K3s v1\.37\.1\+ \(not on the v1\.36 line/);
    const current = twoPools("v1.37.1+k3s1");
    assert.ok(!current.ok);
    assert.match(current.issues.find((i) => i.path === "k3s-platform:k3s.serviceLb.pools.internal[0]")!.message, /K3s itself accepts several pools per node from v1\.37\.1 .*which k3s-platform does not render yet/);
  });

  it("cgroup v1 (KEP-5573): the kubelet refuses cgroup v1 hosts from v1.35; an opt-out is noted", () => {
    assert.equal(hasFeature(KUBELET_REFUSES_CGROUP_V1, at("v1.34.9+k3s1")), false);
    assert.equal(hasFeature(KUBELET_REFUSES_CGROUP_V1, at("v1.35.0+k3s1")), true);
    const optOut = (version: string) =>
      parseStackConfig(variant("dev", (raw) => Object.assign(k3s(raw), { version, extraAgentConfig: { "kubelet-arg": ["fail-cgroupv1=false"] } })));
    const current = optOut("v1.37.1+k3s1");
    assert.ok(current.ok, current.ok ? "" : JSON.stringify(current.issues));
    assert.ok(current.warnings.some((w) => w.path === 'k3s-platform:k3s.extraAgentConfig["kubelet-arg"]' && /cgroup v1 hosts, which Kubernetes no longer supports \(KEP-5573\)/.test(w.message)), JSON.stringify(current.warnings));
    const old = optOut("v1.34.9+k3s1");
    assert.ok(old.ok && old.warnings.some((w) => /has no effect before K3s v1\.35/.test(w.message)));
  });

  it("containerd template: a table under the other containerd version's CRI plugin name is a warning (containerd 2 from v1.31.6 / v1.32.2)", () => {
    const template = (version: string, body: string) =>
      parseStackConfig(variant("dev", (raw) => Object.assign(k3s(raw), { version, containerdTemplate: `{{ template "base" . }}\n${body}\n` })));
    const oldSchema = template("v1.37.1+k3s1", '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."crun"]');
    assert.ok(oldSchema.ok && oldSchema.warnings.some((w) => w.path === "k3s-platform:k3s.containerdTemplate" && /v1\.37\.1\+k3s1 runs containerd 2: use io\.containerd\.cri\.v1\.runtime/.test(w.message)), JSON.stringify(oldSchema));
    const newSchema = template("v1.31.4+k3s1", '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."crun"]');
    assert.ok(newSchema.ok && newSchema.warnings.some((w) => /v1\.31\.4\+k3s1 runs containerd 1\.7: use io\.containerd\.grpc\.v1\.cri/.test(w.message)));
    const matching = template("v1.37.1+k3s1", '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."crun"]');
    assert.ok(matching.ok && !matching.warnings.some((w) => w.path === "k3s-platform:k3s.containerdTemplate"));
  });
});
