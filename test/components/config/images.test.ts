import { strict as assert } from "node:assert";
import { hasDigest, parseImageRef } from "../../../components/config/image-ref";
import { StackInput } from "../../../components/config/schema";
import { KUBE_VIP_IMAGE } from "../../../components/config/schema/addons";
import { AUTOSCALER_IMAGE, NODE_CACHE_IMAGE } from "../../../components/config/schema/dns";
import { allowedRegistries, deployedImages, surfaceIssues } from "../../../components/config/surfaces";
import { parseStackConfig } from "../../../components/stack/load";
import { policies, TYPES } from "../../../policies/policies";
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { resourceArgs, runResourcePolicy } from "../../helpers/policy-harness";
import { sampleConfig, variant } from "../../helpers/samples";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const k3s = (raw: StackInput) => raw.k3s as NonNullable<StackInput["k3s"]>;
type Raw = StackInput & { images?: { registries?: string[] }; dns?: Record<string, unknown> };

/** Prod with kube-vip set to `image` and images.registries as given (unset: the defaults' registries). */
const prodVip = (image: string, registries?: string[]) =>
  parseStackConfig(
    variant("prod", (r) => {
      k3s(r).apiVip = { ...k3s(r).apiVip!, image };
      (r as Raw).images = registries ? { registries } : {};
    }),
  );
const vipIssues = (result: ReturnType<typeof prodVip>) => (result.ok ? [] : result.issues.filter((i) => i.path === "k3s-platform:k3s.apiVip.image"));

describe("images k3s-platform deploys (issue 24)", () => {
  it("image references read as the OCI distribution grammar reads them", () => {
    assert.deepEqual(parseImageRef("ghcr.io/kube-vip/kube-vip:v1.2.2"), { registry: "ghcr.io", path: "kube-vip/kube-vip", tag: "v1.2.2" });
    assert.deepEqual(parseImageRef("busybox"), { registry: "docker.io", path: "library/busybox" });
    assert.deepEqual(parseImageRef("rancher/mirrored-pause:3.10"), { registry: "docker.io", path: "rancher/mirrored-pause", tag: "3.10" });
    assert.deepEqual(parseImageRef(`localhost/x/y@${DIGEST}`), { registry: "localhost", path: "x/y", digest: DIGEST });
    assert.deepEqual(parseImageRef(`registry.example.com:5000/dns/k8s-dns-node-cache:1.26.8@${DIGEST}`), { registry: "registry.example.com:5000", path: "dns/k8s-dns-node-cache", tag: "1.26.8", digest: DIGEST });
    assert.equal(hasDigest(`a/b:1@${DIGEST}`), true);
    assert.equal(hasDigest("a/b:1"), false);
  });

  it("defaults are current releases, tag-only (no digest could be verified here), from ghcr.io and registry.k8s.io", () => {
    assert.equal(KUBE_VIP_IMAGE, "ghcr.io/kube-vip/kube-vip:v1.2.2");
    assert.equal(NODE_CACHE_IMAGE, "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8");
    assert.equal(AUTOSCALER_IMAGE, "registry.k8s.io/cpa/cluster-proportional-autoscaler:v1.10.3");
    for (const image of [KUBE_VIP_IMAGE, NODE_CACHE_IMAGE, AUTOSCALER_IMAGE]) assert.equal(hasDigest(image), false);
    assert.deepEqual(allowedRegistries({ ...sampleConfig("dev"), images: {} }).sort(), ["ghcr.io", "registry.k8s.io"]);
  });

  it("prod refuses the default without a digest, naming how to get one; with its digest it passes", () => {
    const bare = vipIssues(prodVip(KUBE_VIP_IMAGE));
    assert.equal(bare.length, 1, JSON.stringify(bare));
    assert.match(bare[0]!.message, /has no @sha256: digest: a tag can be re-pushed; pin the digest your registry reports \(crane digest ghcr\.io\/kube-vip\/kube-vip:v1\.2\.2/);
    assert.doesNotMatch(bare[0]!.message, /k3s\.exceptions/, "no exception covers a missing digest");
    assert.deepEqual(vipIssues(prodVip(`${KUBE_VIP_IMAGE}@${DIGEST}`)), []);
  });

  it("prod refuses a registry outside images.registries, even with a digest; listing it (a mirror of the same path and tag) passes", () => {
    const mirror = `registry.corp.example.com/kube-vip/kube-vip:v1.2.2@${DIGEST}`;
    const unlisted = vipIssues(prodVip(mirror));
    assert.equal(unlisted.length, 1, JSON.stringify(unlisted));
    assert.match(unlisted[0]!.message, /comes from registry\.corp\.example\.com, not a registry in images\.registries \(.*ghcr\.io.*\)/);
    assert.deepEqual(vipIssues(prodVip(mirror, ["registry.corp.example.com"])), []);
    // Listing only the mirror takes ghcr.io off the list.
    assert.equal(vipIssues(prodVip(`${KUBE_VIP_IMAGE}@${DIGEST}`, ["registry.corp.example.com"])).length, 1);
  });

  it("another tag or repository needs an exception naming it (with a digest), as before", () => {
    const other = `ghcr.io/kube-vip/kube-vip:v1.1.2@${DIGEST}`;
    const issues = vipIssues(prodVip(other));
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, /is not the image k3s-platform pins .*k3s\.exceptions: \[\{ setting: "apiVip\.image=ghcr\.io\/kube-vip\/kube-vip:v1\.1\.2@sha256:/);
  });

  it("dev and staging warn where prod refuses; disabled add-ons deploy no image", () => {
    const dev = parseStackConfig(variant("dev", (r) => ((r as Raw).dns = { ...(r as Raw).dns, nodeLocal: { enabled: true } })));
    assert.ok(dev.ok, JSON.stringify(dev));
    assert.ok(dev.warnings.some((w) => w.path === "k3s-platform:dns.nodeLocal.image" && /has no @sha256: digest/.test(w.message)), JSON.stringify(dev.warnings));
    assert.deepEqual(deployedImages({ ...sampleConfig("dev"), k3s: { ...sampleConfig("dev").k3s, apiVip: undefined } }).map((i) => i.name).filter((n) => n !== "dns.autoscaler.image"), []);
  });

  it("the pack refuses the same (free-form-settings-allowlisted reads the same predicate)", async () => {
    const config = structuredClone(sampleConfig("prod"));
    config.k3s.apiVip!.image = KUBE_VIP_IMAGE;
    assert.ok(surfaceIssues(config).some((i) => i.refused && /has no @sha256: digest/.test(i.message)));
    const policy = policies.find((p) => p.name === "free-form-settings-allowlisted") as ResourceValidationPolicy;
    const messages = await runResourcePolicy(policy, resourceArgs({ type: TYPES.cluster, name: "prod", props: { config } }));
    assert.ok(messages.some((m) => /k3s\.apiVip\.image: ghcr\.io\/kube-vip\/kube-vip:v1\.2\.2 has no @sha256: digest/.test(m)), JSON.stringify(messages));
    // The sample pins digests from its listed mirror: nothing to report.
    assert.deepEqual(await runResourcePolicy(policy, resourceArgs({ type: TYPES.cluster, name: "prod", props: { config: sampleConfig("prod") } })), []);
  });
});
