import { strict as assert } from "node:assert";
import { hasFeature, releaseOf, SUBCOMMANDS, subcommandGap } from "../../../components/config/flags";
import { GATEWAY_API_CRDS, KUBELET_CONFIG_DROPINS, TRAEFIK_CHART_V40, traefikChartKeyFindings } from "../../../components/config/packaged";
import { StackInput } from "../../../components/config/schema";
import { parseStackConfig } from "../../../components/stack/load";
import { variant } from "../../helpers/samples";

const at = (version: string) => releaseOf({ version })!;
const k3s = (raw: StackInput) => raw.k3s as NonNullable<StackInput["k3s"]>;

/** Release facts of the packaged components (components/config/packaged.ts) and the CA rotation gate (issue 24). */
describe("packaged components per release (components/config/packaged.ts)", () => {
  describe("Traefik chart v40 renamed providers.kubernetesIngressNginx to kubernetesIngressNGINX (traefik-helm-chart#1714; docs.k3s.io/release-notes/v1.36.X, v1.36.2+k3s1)", () => {
    it("the chart v40 arrives with v1.34.9, v1.35.6, v1.36.2 (k3s-io/k3s#14133 backports) and every v1.37 release; not on v1.33", () => {
      const cases: Array<[string, boolean]> = [
        ["v1.33.7+k3s3", false],
        ["v1.34.2+k3s1", false],
        ["v1.34.9+k3s1", true],
        ["v1.35.5+k3s1", false],
        ["v1.35.6+k3s1", true],
        ["v1.36.1+k3s1", false],
        ["v1.36.2+k3s1", true],
        ["v1.37.0+k3s1", true],
      ];
      assert.deepEqual(cases.map(([v]) => [v, hasFeature(TRAEFIK_CHART_V40, at(v))]), cases);
      assert.equal(hasFeature(TRAEFIK_CHART_V40, releaseOf({ channel: "stable" })!), true, "a channel counts as the newest release");
    });

    it("the old key on a v40 release and the new key on an older one are both found, naming the spelling to use", () => {
      const old = { providers: { kubernetesIngressNginx: { enabled: true } } };
      const renamed = { providers: { kubernetesIngressNGINX: { enabled: true } } };
      const onNew = traefikChartKeyFindings(old, at("v1.36.2+k3s1"));
      assert.equal(onNew.length, 1);
      assert.deepEqual(onNew[0]!.at, ["providers", "kubernetesIngressNginx"]);
      assert.match(onNew[0]!.message, /renamed providers\.kubernetesIngressNginx to providers\.kubernetesIngressNGINX .*silently stop working; write providers\.kubernetesIngressNGINX/);
      assert.deepEqual(traefikChartKeyFindings(renamed, at("v1.36.2+k3s1")), []);
      assert.deepEqual(traefikChartKeyFindings(old, at("v1.36.1+k3s1")), []);
      const onOld = traefikChartKeyFindings(renamed, at("v1.36.1+k3s1"));
      assert.match(onOld[0]!.message, /before v40, which spells it providers\.kubernetesIngressNginx/);
      assert.deepEqual(traefikChartKeyFindings({ providers: { kubernetesIngress: {} } }, at("v1.37.1+k3s1")), []);
    });

    it("validation refuses it in every environment, at the key's path", () => {
      for (const env of ["dev", "prod"] as const) {
        const r = parseStackConfig(variant(env, (raw) => Object.assign(k3s(raw), { traefik: { values: { providers: { kubernetesIngressNginx: { enabled: true } } } } })));
        assert.ok(!r.ok, env);
        assert.ok(r.issues.some((i) => i.path === "k3s-platform:k3s.traefik.values.providers.kubernetesIngressNginx" && /write providers\.kubernetesIngressNGINX/.test(i.message)), `${env}: ${JSON.stringify(r.issues)}`);
      }
    });
  });

  describe("Gateway API CRDs ship from v1.37 (k3s-io/k3s#14573, #14586)", () => {
    const gateway = (version: string) =>
      parseStackConfig(variant("dev", (raw) => Object.assign(k3s(raw), { version, disable: [], traefik: { values: { providers: { kubernetesGateway: { enabled: true } } } } })));
    it("Traefik's Gateway provider before v1.37 is a warning to install the CRDs first; on v1.37 nothing", () => {
      assert.equal(hasFeature(GATEWAY_API_CRDS, at("v1.36.3+k3s1")), false);
      assert.equal(hasFeature(GATEWAY_API_CRDS, at("v1.37.0+k3s1")), true);
      const before = gateway("v1.36.3+k3s1");
      assert.ok(before.ok, JSON.stringify(before));
      assert.ok(before.warnings.some((w) => w.path === "k3s-platform:k3s.traefik.values.providers.kubernetesGateway" && /Gateway API CRDs, which K3s ships only from v1\.37/.test(w.message)), JSON.stringify(before.warnings));
      const current = gateway("v1.37.1+k3s1");
      assert.ok(current.ok);
      assert.ok(!current.warnings.some((w) => /Gateway API CRDs/.test(w.message)));
    });
  });

  it("kubelet config drop-ins from v1.32 (docs.k3s.io 'Kubelet configuration' Version Gate): modelled, not used (docs/upgrading.md)", () => {
    assert.deepEqual(["v1.31.14+k3s1", "v1.32.0+k3s1", "v1.37.1+k3s1"].map((v) => hasFeature(KUBELET_CONFIG_DROPINS, at(v))), [false, true, true]);
  });

  it("certificate rotate-ca: the CA-rotation fix releases v1.33.6+k3s1 / v1.34.2+k3s1 (k3s-io/k3s#13006) and every later line", () => {
    const since = SUBCOMMANDS["certificate rotate-ca"];
    assert.deepEqual(
      ["v1.33.5+k3s1", "v1.33.6+k3s1", "v1.34.1+k3s1", "v1.34.2+k3s1", "v1.35.0+k3s1", "v1.37.1+k3s1"].map((v) => hasFeature(since, at(v))),
      [false, true, false, true, true, true],
    );
    assert.match(subcommandGap("certificate rotate-ca", { version: "v1.34.1+k3s1" })!, /needs K3s v1\.34\.2\+ on the v1\.34 line/);
  });
});
