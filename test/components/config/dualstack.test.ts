import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parse, stringify } from "yaml";
import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { clusterTopology } from "../../../components/config/topology";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { noProxyList } from "../../../components/k3s/install";
import { rewriteKubeconfig } from "../../../components/node/kubeconfig";
import { planNode } from "../../../components/plan/node";
import { renderTenants } from "../../../components/tenants/render";
import { policies, TYPES } from "../../../policies/policies";
import { resourceArgs, runResourcePolicy } from "../../helpers/policy-harness";
import { SAMPLE_KUBECONFIG } from "../../helpers/pulumi-mocks";
import { osPrepRoot } from "../../helpers/os-prep-root";
import { ENVS, FIXTURE_SAMPLES, fixtureConfig, fixtureRaw, REPO, sampleConfig, variant } from "../../helpers/samples";

/** Dual-stack / IPv6 (issue 14): values per family, the rules on them, and where they land. */

type Node = StackInput["nodes"][number];
type K3s = NonNullable<StackInput["k3s"]>;

/** The dual-stack sample with an edit. */
function ds(edit: (raw: StackInput) => void): StackInput {
  const raw = structuredClone(fixtureRaw("dualstack"));
  edit(raw);
  return raw;
}
const k3s = (raw: StackInput): K3s => (raw.k3s ??= {});
const node = (raw: StackInput, i: number) => raw.nodes[i] as Node;

/** Asserts the config is rejected with an issue at exactly `path` whose message matches. */
function rejects(raw: StackInput, path: string, message: RegExp): void {
  const result = parseStackConfig(raw);
  assert.equal(result.ok, false, `expected ${path} to be rejected`);
  if (result.ok) return;
  const hit = result.issues.find((i) => i.path === path && message.test(i.message));
  assert.ok(hit, `no issue at ${path} matching ${message}; got:\n${result.issues.map((i) => `${i.path}: ${i.message}`).join("\n")}`);
}

const configYaml = (config: ResolvedConfig, i: number) =>
  parse(planNode(config, config.nodes[i]!).files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
const osPrep = (config: ResolvedConfig, i: number) => planNode(config, config.nodes[i]!).files.find((f) => f.name === "os-prep.sh")!.content;

describe("dual-stack / IPv6 networking", () => {
  describe("single-value config keeps working", () => {
    for (const env of ENVS) {
      it(`${env}: strings are read as one-entry lists and render as before`, () => {
        const raw = sampleConfig(env);
        const written = variant(env, () => {}).k3s!;
        assert.deepEqual(raw.k3s.clusterCidr, [written.clusterCidr]);
        assert.deepEqual(raw.k3s.serviceCidr, [written.serviceCidr]);
        assert.deepEqual(raw.k3s.clusterDns, [written.clusterDns]);
        const flags = configYaml(raw, 0);
        assert.equal(flags["cluster-cidr"], written.clusterCidr);
        assert.equal(flags["service-cidr"], written.serviceCidr);
        assert.equal(flags["cluster-dns"], written.clusterDns);
        assert.equal(flags["flannel-ipv6-masq"], undefined);
      });
    }

    it("an unset clusterDns is the 10th address of each serviceCidr, as K3s picks it", () => {
      const config = loadStackConfig(variant("dev", (r) => delete k3s(r).clusterDns));
      assert.deepEqual(config.k3s.clusterDns, ["10.43.0.10"]);
      assert.deepEqual(fixtureConfig("dualstack").k3s.clusterDns, ["10.43.0.10", "2001:db8:43::a"]);
    });

    it("a one-entry list is the same as the string", () => {
      const list = loadStackConfig(variant("dev", (r) => Object.assign(k3s(r), { clusterCidr: ["10.42.0.0/16"], serviceCidr: ["10.43.0.0/16"] })));
      assert.deepEqual(configYaml(list, 0)["cluster-cidr"], "10.42.0.0/16");
    });
  });

  describe("the dual-stack sample", () => {
    const config = fixtureConfig("dualstack");
    it("renders comma-joined per-family flags in canonical text, primary family first", () => {
      const server = configYaml(config, 0);
      assert.equal(server["cluster-cidr"], "10.42.0.0/16,2001:db8:42::/56");
      assert.equal(server["service-cidr"], "10.43.0.0/16,2001:db8:43::/112", "2001:DB8:43:0::/112 as written");
      assert.equal(server["cluster-dns"], "10.43.0.10,2001:db8:43::a");
      assert.equal(server["node-ip"], "192.0.2.10,2001:db8::10", "2001:db8:0:0::10 as written");
      assert.equal(server["node-external-ip"], "203.0.113.10,2001:db8:ffff::10");
      assert.equal(server["flannel-ipv6-masq"], true);
      const agent = configYaml(config, 1);
      assert.equal(agent["node-ip"], "192.0.2.20,2001:db8::20");
      assert.equal(agent["flannel-ipv6-masq"], undefined, "a server flag; agents follow");
      assert.equal(agent.server, "https://192.0.2.10:6443");
    });

    it("NO_PROXY lists both families: node networks, pod and service CIDRs; a proxy must cover both families of every node (issue 26)", () => {
      const proxied = (noProxy: string[]) => ds((r) => Object.assign(k3s(r), { proxy: { httpProxy: "http://proxy.example.com:3128", noProxy }, nodeNetworks: ["192.0.2.0/24", "2001:db8::/32"] }));
      const proxiedConfig = loadStackConfig(proxied(["203.0.113.0/24"]));
      const list = noProxyList(proxiedConfig, proxiedConfig.k3s.proxy!.noProxy);
      for (const entry of ["10.42.0.0/16", "2001:db8:42::/56", "10.43.0.0/16", "2001:db8:43::/112", "192.0.2.0/24", "2001:db8::/32", "203.0.113.0/24"]) {
        assert.ok(list.includes(entry), `${entry} not in ${list.join(",")}`);
      }
      for (const address of ["192.0.2.10", "2001:db8::10", "2001:db8:ffff::10", "2001:db8::20", "192.0.2.20"]) assert.ok(!list.includes(address), address);
      // The externalIp 203.0.113.10 is in no node network: the user's noProxy must cover it.
      rejects(proxied([]), "k3s-platform:k3s.proxy.noProxy", /address 203\.0\.113\.10 is covered by no CIDR/);
    });

    it("NetworkPolicy ipBlocks per family: /32 and /128, canonical network CIDRs", () => {
      const policies = renderTenants(config).filter((o) => o.kind === "NetworkPolicy");
      const cidrs = (name: string) => JSON.stringify(policies.find((p) => p.metadata.name === name)!.spec).match(/"cidr":"[^"]+"/g);
      assert.deepEqual(cidrs("allow-apiserver"), ['"cidr":"192.0.2.10/32"', '"cidr":"2001:db8::10/128"']);
      assert.deepEqual(cidrs("allow-dns"), ['"cidr":"169.254.20.10/32"', '"cidr":"10.43.0.10/32"', '"cidr":"2001:db8:43::a/128"']);
      assert.deepEqual(cidrs("allow-partners"), ['"cidr":"198.51.100.0/24"', '"cidr":"2001:db8:200::/48"'], "2001:DB8:200::/48 as written");
    });

    it("IPv6 forwarding is set only where the cluster has IPv6", () => {
      assert.match(osPrep(config, 0), /^net\.ipv6\.conf\.all\.forwarding = 1$/m);
      assert.doesNotMatch(osPrep(sampleConfig("dev"), 0), /ipv6\.conf/);
    });
  });

  describe("IPv6-only", () => {
    const v6only = (edit: (raw: StackInput) => void = () => {}) =>
      ds((r) => {
        Object.assign(k3s(r), { clusterCidr: "2001:db8:42::/56", serviceCidr: "2001:db8:43::/112", firewall: { mode: "open" } });
        node(r, 0).nodeIp = "2001:db8::10";
        node(r, 0).externalIp = "2001:db8:ffff::10";
        node(r, 1).nodeIp = ["2001:db8::20"];
        edit(r);
      });
    it("is accepted and joins over a bracketed IPv6 URL", () => {
      const config = loadStackConfig(v6only((r) => {
        node(r, 0).host = "2001:db8::10";
        r.dns = {};
      }));
      assert.equal(configYaml(config, 0)["cluster-dns"], "2001:db8:43::a");
      assert.equal(configYaml(config, 1).server, "https://[2001:db8::10]:6443");
      assert.equal(clusterTopology(config).agentJoinUrl, "https://[2001:db8::10]:6443");
    });
    it("needs nodeIp on every node (IPv6-primary: the kubelet would pick IPv4)", () =>
      rejects(v6only((r) => delete node(r, 1).nodeIp), "k3s-platform:nodes[1] (ds-agent-1).nodeIp", /IPv6-only: set nodeIp to its IPv6 address/));
    it("refuses an IPv4 nodeIp", () =>
      rejects(v6only((r) => (node(r, 1).nodeIp = "192.0.2.20")), "k3s-platform:nodes[1] (ds-agent-1).nodeIp", /is IPv4, but the cluster is IPv6-only/));
    it("refuses NodeLocal DNSCache (its listener is IPv4 link-local)", () =>
      rejects(v6only(), "k3s-platform:dns.nodeLocal.enabled", /pods of an IPv6-only cluster cannot reach/));
    it("refuses an IPv4 clusterDns", () =>
      rejects(v6only((r) => (k3s(r).clusterDns = "10.43.0.10")), "k3s-platform:k3s.clusterDns", /10\.43\.0\.10 is IPv4, but serviceCidr 2001:db8:43::\/112 has no IPv4 CIDR/));
  });

  describe("pairs: at most one value per family", () => {
    it("refuses two IPv4 CIDRs, naming the second", () =>
      rejects(ds((r) => (k3s(r).clusterCidr = ["10.42.0.0/16", "10.44.0.0/16"])), "k3s-platform:k3s.clusterCidr[1]", /both IPv4: a dual-stack value is one IPv4 and one IPv6 CIDR/));
    it("refuses two IPv6 node addresses", () =>
      rejects(ds((r) => (node(r, 1).nodeIp = ["2001:db8::20", "2001:db8::21"])), "k3s-platform:nodes[1] (ds-agent-1).nodeIp[1]", /both IPv6/));
    it("refuses three entries and an empty list", () => {
      rejects(ds((r) => (k3s(r).serviceCidr = ["10.43.0.0/16", "2001:db8:43::/112", "10.45.0.0/16"])), "k3s-platform:k3s.serviceCidr", /one or two CIDRs \(one per IP family\), not 3/);
      rejects(ds((r) => (node(r, 0).externalIp = [])), "k3s-platform:nodes[0] (ds-server-1).externalIp", /not 0/);
    });
    it("refuses a comma-joined string with the list form as the fix", () =>
      rejects(ds((r) => (k3s(r).clusterCidr = "10.42.0.0/16,2001:db8:42::/56")), "k3s-platform:k3s.clusterCidr", /as a YAML list, e\.g\. \[10\.42\.0\.0\/16, 2001:db8:42::\/56\], not comma-joined/));
    it("refuses hostile and malformed entries at their index", () => {
      for (const bad of ["2001:db8:42::/56\ncluster-reset: true", "2001:db8:42::/56 ", "$(reboot)", "2001:db8:42::/129", "fe80::/64%eth0"]) {
        rejects(ds((r) => (k3s(r).clusterCidr = ["10.42.0.0/16", bad])), "k3s-platform:k3s.clusterCidr[1]", /not a CIDR in canonical form/);
      }
      for (const bad of ["fe80::1%eth0", "2001:db8::1/128", "0x7f.0.0.1", "[2001:db8::1]", "2001:db8::1;id"]) {
        rejects(ds((r) => (node(r, 0).nodeIp = ["192.0.2.10", bad])), "k3s-platform:nodes[0] (ds-server-1).nodeIp[1]", /not an IP address in canonical form/);
      }
      const spelled = loadStackConfig(ds((r) => (k3s(r).clusterCidr = ["10.42.0.0/16", "2001:0DB8:42:0:0::/056"])));
      assert.deepEqual(spelled.k3s.clusterCidr, ["10.42.0.0/16", "2001:db8:42::/56"], "any RFC 4291 spelling, handed on canonical");
      rejects(ds((r) => (k3s(r).clusterCidr = 42 as unknown as string)), "k3s-platform:k3s.clusterCidr", /one CIDR or a list of one or two/);
    });
    it("refuses IPv4-mapped IPv6 and host bits", () => {
      rejects(ds((r) => (node(r, 1).nodeIp = ["192.0.2.20", "::ffff:192.0.2.20"])), "k3s-platform:nodes[1] (ds-agent-1).nodeIp[1]", /IPv4-mapped/);
      rejects(ds((r) => (k3s(r).clusterCidr = ["10.42.0.0/16", "2001:db8:42::1/56"])), "k3s-platform:k3s.clusterCidr[1]", /host bits set: use the network address 2001:db8:42::\/56/);
      rejects(ds((r) => (r.tenants![0]!.network!.allows![0]!.cidrs = ["2001:db8:200::1/48"])), "k3s-platform:tenants[0] (apps).network.allows[0].cidrs[0]", /host bits set/);
    });
  });

  describe("families agree: pod, service, DNS, nodes", () => {
    it("serviceCidr must have clusterCidr's families, in its order", () => {
      rejects(ds((r) => (k3s(r).serviceCidr = "10.43.0.0/16")), "k3s-platform:k3s.serviceCidr", /is IPv4, but clusterCidr is IPv4 \+ IPv6/);
      rejects(ds((r) => (k3s(r).serviceCidr = ["2001:db8:43::/112", "10.43.0.0/16"])), "k3s-platform:k3s.serviceCidr", /same IP families in the same order/);
    });
    it("a dual-stack cluster is dual-stack on every node", () => {
      rejects(ds((r) => delete node(r, 1).nodeIp), "k3s-platform:nodes[1] (ds-agent-1).nodeIp", /dual-stack \(IPv4 \+ IPv6\): set nodeIp to one IPv4 \+ IPv6 address each/);
      rejects(ds((r) => (node(r, 1).nodeIp = "192.0.2.20")), "k3s-platform:nodes[1] (ds-agent-1).nodeIp", /is IPv4, but the cluster is dual-stack .*one address of each family/);
      rejects(ds((r) => (node(r, 0).nodeIp = ["2001:db8::10", "192.0.2.10"])), "k3s-platform:nodes[0] (ds-server-1).nodeIp", /lists IPv6 \+ IPv4, but clusterCidr lists IPv4 \+ IPv6/);
    });
    it("an IPv4-only cluster refuses IPv6 node addresses it could not use", () => {
      rejects(variant("dev", (r) => (node(r, 1).nodeIp = "2001:db8::20")), "k3s-platform:nodes[1] (dev-agent-1).nodeIp", /is IPv6, but the cluster is IPv4-only/);
      rejects(variant("dev", (r) => (node(r, 1).externalIp = ["203.0.113.20", "2001:db8::20"])), "k3s-platform:nodes[1] (dev-agent-1).externalIp[1]", /2001:db8::20 is IPv6, but the cluster is IPv4-only/);
    });
    it("flannelIpv6Masq needs an IPv6 pod network and flannel", () => {
      rejects(variant("dev", (r) => (k3s(r).flannelIpv6Masq = true)), "k3s-platform:k3s.flannelIpv6Masq", /only to dual-stack or IPv6-only/);
      rejects(ds((r) => (k3s(r).flannelBackend = "none")), "k3s-platform:k3s.flannelIpv6Masq", /flannelBackend is none/);
      rejects(ds((r) => (k3s(r).extraServerConfig = { "flannel-ipv6-masq": true })), 'k3s-platform:k3s.extraServerConfig["flannel-ipv6-masq"]', /set k3s\.flannelIpv6Masq instead/);
    });
  });

  describe("overlaps, per family", () => {
    it("pod vs service IPv6 CIDRs", () =>
      rejects(ds((r) => (k3s(r).serviceCidr = ["10.43.0.0/16", "2001:db8:42:ff::/112"])), "k3s-platform:k3s.serviceCidr[1]", /overlaps clusterCidr 2001:db8:42::\/56/));
    it("an IPv4 and an IPv6 range never overlap each other", () => {
      const config = loadStackConfig(ds((r) => (k3s(r).serviceCidr = ["10.43.0.0/16", "::a2b:0/112"])));
      assert.deepEqual(config.k3s.serviceCidr, ["10.43.0.0/16", "::a2b:0/112"], "::10.43.0.0 is IPv6 space, not 10.43.0.0");
    });
    it("node addresses vs pod/service networks, per family and index", () => {
      rejects(ds((r) => (node(r, 0).nodeIp = ["192.0.2.10", "2001:db8:42::10"])), "k3s-platform:nodes[0] (ds-server-1).nodeIp[1]", /2001:db8:42::10 lies inside k3s\.clusterCidr 2001:db8:42::\/56/);
      rejects(ds((r) => (node(r, 0).externalIp = ["203.0.113.10", "2001:db8:43::5"])), "k3s-platform:nodes[0] (ds-server-1).externalIp[1]", /inside k3s\.serviceCidr 2001:db8:43::\/112/);
      rejects(ds((r) => (node(r, 1).host = "2001:db8:42::99")), "k3s-platform:nodes[1] (ds-agent-1).host", /inside k3s\.clusterCidr/);
    });
    it("clusterDns inside the serviceCidr of its family", () =>
      rejects(ds((r) => (k3s(r).clusterDns = ["10.43.0.10", "2001:db8:42::a"])), "k3s-platform:k3s.clusterDns[1]", /2001:db8:42::a is outside serviceCidr 2001:db8:43::\/112/));
    it("service CIDRs no larger than K3s supports (/12 IPv4, /112 IPv6)", () => {
      rejects(ds((r) => (k3s(r).serviceCidr = ["10.43.0.0/16", "2001:db8:43::/64"])), "k3s-platform:k3s.serviceCidr[1]", /larger than K3s supports for IPv6 \(at most \/112\)/);
      rejects(variant("dev", (r) => Object.assign(k3s(r), { serviceCidr: "10.0.0.0/8", clusterCidr: "172.16.0.0/16", clusterDns: "10.0.0.10" })), "k3s-platform:k3s.serviceCidr", /at most \/12/);
    });
  });

  describe("errors name the file, the config path and the node", () => {
    it("npm run render on a broken dual-stack stack file", () => {
      const dir = mkdtempSync(join(tmpdir(), "k3sp-ds-"));
      try {
        const file = join(dir, "Pulumi.broken.yaml");
        const doc = parse(readFileSync(FIXTURE_SAMPLES.dualstack, "utf8")) as { config: Record<string, unknown> };
        (doc.config["k3s-platform:nodes"] as Array<Record<string, unknown>>)[1]!.nodeIp = "192.0.2.20";
        writeFileSync(file, stringify(doc));
        const r = spawnSync(join(REPO, "node_modules", ".bin", "tsx"), [join(REPO, "tools", "render.ts"), "--config", file, "--out", join(dir, "out")], { cwd: REPO, encoding: "utf8" });
        assert.notEqual(r.status, 0);
        assert.ok(r.stderr.includes(file), r.stderr);
        assert.match(r.stderr, /k3s-platform:nodes\[1\] \(ds-agent-1\)\.nodeIp: is IPv4, but the cluster is dual-stack/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("policy pack: the same rules on the registered cluster", () => {
    const run = async (name: string, config: ResolvedConfig) =>
      runResourcePolicy(policies.find((p) => p.name === name)! as Parameters<typeof runResourcePolicy>[0], resourceArgs({ type: TYPES.cluster, name: "dev", props: { config } as Record<string, unknown> }));
    it("disjoint-networks: per-family overlaps and single-family nodes on a dual-stack cluster", async () => {
      const good = fixtureConfig("dualstack");
      assert.deepEqual(await run("disjoint-networks", good), []);
      const bad = structuredClone(good);
      bad.nodes[1]!.nodeIp = ["192.0.2.20"];
      bad.k3s.serviceCidr = ["10.43.0.0/16", "2001:db8:42:1::/112"];
      const messages = (await run("disjoint-networks", bad)).join("\n");
      assert.match(messages, /serviceCidr 2001:db8:42:1::\/112 overlaps clusterCidr 2001:db8:42::\/56/);
      assert.match(messages, /node ds-agent-1 nodeIp is IPv4, but the cluster is dual-stack/);
    });
    it("cluster-dns-in-service-cidr: each family; an older plain-string config is still read", async () => {
      const bad = structuredClone(fixtureConfig("dualstack"));
      bad.k3s.clusterDns = ["10.43.0.10", "2001:db8:42::a"];
      assert.match((await run("cluster-dns-in-service-cidr", bad)).join("\n"), /clusterDns 2001:db8:42::a is outside serviceCidr 2001:db8:43::\/112/);
      const old = structuredClone(sampleConfig("dev")) as unknown as { k3s: Record<string, unknown> };
      Object.assign(old.k3s, { clusterCidr: "10.42.0.0/16", serviceCidr: "10.43.0.0/16", clusterDns: "10.43.0.10" });
      assert.deepEqual(await run("cluster-dns-in-service-cidr", old as unknown as ResolvedConfig), []);
    });
  });

  describe("API endpoint and kubeconfig with an IPv6 address", () => {
    it("brackets the address in URLs", () => {
      const config = loadStackConfig(ds((r) => (k3s(r).apiEndpoint = "2001:db8::100")));
      assert.equal(configYaml(config, 1).server, "https://[2001:db8::100]:6443");
      const kubeconfig = parse(rewriteKubeconfig(SAMPLE_KUBECONFIG, config.k3s.apiEndpoint!, "ds")) as { clusters: Array<{ cluster: { server: string } }> };
      assert.equal(kubeconfig.clusters[0]!.cluster.server, "https://[2001:db8::100]:6443");
      assert.ok((configYaml(config, 0)["tls-san"] as string[]).includes("2001:db8::100"), "the IPv6 endpoint is a SAN, unbracketed");
    });
  });

  describe("os-prep firewall, run in the sandbox (stub firewall-cmd / ufw)", function () {
    // Each script run forks the stubs dozens of times; a loaded 2-core machine needs minutes, not a flake.
    this.timeout(300_000);
    const STUBS = join(REPO, "test", "helpers", "stubs");
    const scratch = mkdtempSync(join(tmpdir(), "k3sp-ds-fw-"));
    after(() => rmSync(scratch, { recursive: true, force: true }));
    const config = fixtureConfig("dualstack");

    function sandbox(active: "firewalld" | "ufw", ufwDefault?: string) {
      const root = osPrepRoot(scratch, active, ufwDefault);
      const script = join(root, "os-prep.sh");
      writeFileSync(script, osPrep(config, 0));
      const log = join(root, "stub.log");
      writeFileSync(log, "");
      const run = () => {
        const r = spawnSync("bash", [script], { encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` } });
        return { status: r.status, out: `${r.stdout}${r.stderr}` };
      };
      return { root, run };
    }

    it("firewalld: rich rules per family, scoped to node addresses; a second run changes nothing", () => {
      const { root, run } = sandbox("firewalld");
      const first = run();
      assert.equal(first.status, 0, first.out);
      const rules = readFileSync(join(root, "fw/rules"), "utf8").split("\n");
      const rich = (family: string, source: string, port: string, proto = "tcp") => `rich rule family="${family}" source address="${source}" port port="${port}" protocol="${proto}" accept`;
      for (const r of [rich("ipv6", "2001:db8::10", "2379-2380"), rich("ipv6", "2001:db8::20", "8472", "udp"), rich("ipv6", "2001:db8:42::/56", "10250"), rich("ipv6", "2001:db8:100::/64", "6443"), rich("ipv4", "192.0.2.20", "10250")]) {
        assert.ok(rules.includes(r), `missing ${r}`);
      }
      assert.ok(!rules.some((l) => l.includes('port="2379-2380"') && l.includes("2001:db8::20")), "the agent does not reach etcd over IPv6 either");
      for (const s of ["2001:db8:42::/56", "2001:db8:43::/112", "10.42.0.0/16"]) assert.ok(rules.includes(`source ${s}`), `trusted ${s}`);
      assert.equal(readFileSync(join(root, "proc/sys/net/ipv6/conf/all/forwarding"), "utf8").trim(), "1");
      const second = run();
      assert.equal(second.status, 0, second.out);
      assert.match(second.out, /done, 0 change\(s\)/);
    });

    it("ufw: IPv6 sources as ufw lists them; a second run changes nothing; IPV6=no is refused", () => {
      const { root, run } = sandbox("ufw", "IPV6=yes\n");
      const first = run();
      assert.equal(first.status, 0, first.out);
      const rules = readFileSync(join(root, "ufw/rules"), "utf8");
      assert.match(rules, /^2379:2380\/tcp +ALLOW +2001:db8::10$/m);
      assert.match(rules, /^8472\/udp +ALLOW +2001:db8::20$/m);
      assert.match(rules, /^Anywhere +ALLOW +2001:db8:43::\/112$/m);
      const second = run();
      assert.equal(second.status, 0, second.out);
      assert.match(second.out, /done, 0 change\(s\)/);

      const off = sandbox("ufw", "# ufw defaults\nIPV6=no\n");
      const refused = off.run();
      assert.notEqual(refused.status, 0);
      assert.match(refused.out, /ufw has IPv6 disabled \(IPV6=no in \/etc\/default\/ufw\)/);
    });

    // Issue 26: the move from per-node addresses to k3s.nodeNetworks closes the per-address rules
    // an earlier version opened (it kept no record), in the same run, restarting nothing; later, a
    // recorded source no longer listed is closed; the user's own rules stay.
    const networks = ["192.0.2.0/24", "2001:db8::/64"];
    const moved = loadStackConfig(ds((r) => (k3s(r).nodeNetworks = networks)));
    const narrowed = loadStackConfig(ds((r) => (k3s(r).nodeNetworks = ["192.0.2.0/24", "2001:db8::/80"])));
    const byBackend = {
      firewalld: {
        file: "fw/rules",
        rule: (port: string, proto: string, source: string) => `rich rule family="${source.includes(":") ? "ipv6" : "ipv4"}" source address="${source}" port port="${port}" protocol="${proto}" accept`,
        etcd: "2379-2380",
      },
      ufw: {
        file: "ufw/rules",
        rule: (port: string, proto: string, source: string) => `${`${port}/${proto}`.padEnd(26)} ALLOW       ${source}`,
        etcd: "2379:2380",
      },
    } as const;
    for (const active of ["firewalld", "ufw"] as const) {
      it(`${active}: the move to node networks closes the earlier per-address rules, keeps the user's, restarts nothing; a second run changes nothing; a network dropped later is closed (issue 26)`, () => {
        const { rule, file, etcd } = byBackend[active];
        const { root, run } = sandbox(active, active === "ufw" ? "IPV6=yes\n" : undefined);
        const rulesPath = join(root, file);
        const rules = () => readFileSync(rulesPath, "utf8").split("\n").filter(Boolean);
        const script = join(root, "os-prep.sh");
        // As an earlier version left the host: every node address on the node ports, no record.
        assert.equal(run().status, 0);
        rmSync(join(root, "var/lib/k3s-platform/firewall-sources"));
        const nodeAddresses = config.nodes.flatMap((n) => n.nodeIp ?? []);
        const perAddress = nodeAddresses.flatMap((a) => [rule("10250", "tcp", a), rule("8472", "udp", a)]);
        for (const r of perAddress) assert.ok(rules().includes(r), `the earlier rule ${r}`);
        // The user's own: an SSH port, and a K3s port from an address outside every node network.
        const own = [active === "firewalld" ? "port 22/tcp" : rule("22", "tcp", "Anywhere"), rule("10250", "tcp", "198.51.100.7"), rule("10250", "tcp", "2001:db9::7")];
        writeFileSync(rulesPath, `${[...rules(), ...own].join("\n")}\n`);

        writeFileSync(script, planNode(moved, moved.nodes[0]!).files.find((f) => f.name === "os-prep.sh")!.content);
        const move = run();
        assert.equal(move.status, 0, move.out);
        const after = rules();
        for (const r of perAddress) assert.ok(!after.includes(r), `closed: ${r}`);
        for (const n of networks) assert.ok(after.includes(rule("10250", "tcp", n)) && after.includes(rule("8472", "udp", n)), `opened to ${n}`);
        for (const r of own) assert.ok(after.includes(r), `the user's rule stays: ${r}`);
        // etcd stays scoped to the servers' own addresses (they are listed, so they are kept).
        assert.ok(after.includes(rule(etcd, "tcp", "2001:db8::10")) && after.includes(rule(etcd, "tcp", "192.0.2.10")), "etcd rules kept");
        assert.match(move.out, /no longer a cluster source/);
        assert.doesNotMatch(readFileSync(join(root, "stub.log"), "utf8"), /systemctl (stop|restart|start) k3s/, "os-prep restarts nothing");
        const second = run();
        assert.equal(second.status, 0, second.out);
        assert.match(second.out, /done, 0 change\(s\)/);
        assert.deepEqual(rules(), after, "a second run changes nothing");

        // With the record: a network no longer listed is closed, the one listed now opened.
        writeFileSync(script, planNode(narrowed, narrowed.nodes[0]!).files.find((f) => f.name === "os-prep.sh")!.content);
        const narrow = run();
        assert.equal(narrow.status, 0, narrow.out);
        assert.ok(!rules().includes(rule("10250", "tcp", "2001:db8::/64")), "the dropped network's rule is closed");
        assert.ok(rules().includes(rule("10250", "tcp", "2001:db8::/80")));
        for (const r of own) assert.ok(rules().includes(r), `the user's rule stays: ${r}`);
        assert.match(run().out, /done, 0 change\(s\)/);
      });
    }
  });
});

describe("addresses with a dotted IPv4 tail, and addresses that cannot name a node", () => {
  // RFC 4291 §2.2 form 3: the dotted quad is the last 32 bits. ipaddr.js alone reads `::a.b.c.d`
  // as `::ffff:a.b.c.d`; curl and K3s (Go net.ParseIP) read `::a.b.c.d` = `::` + 32 bits.
  it("a dotted tail lands as the address curl and K3s read (the WHATWG URL parser is the oracle)", () => {
    for (const [written, expected] of [
      ["2001:db8::192.0.2.33", "2001:db8::c000:221"],
      ["2001:db8:0:0:0:0:192.0.2.33", "2001:db8::c000:221"],
      ["2001:db8::1:0.0.0.0", "2001:db8::1:0:0"],
    ] as const) {
      assert.equal(new URL(`https://[${written}]/`).hostname, `[${expected}]`, "the oracle agrees with the expected value");
      const config = loadStackConfig(ds((raw) => (node(raw, 1).nodeIp = ["192.0.2.20", written])));
      assert.equal(configYaml(config, 1)["node-ip"], `192.0.2.20,${expected}`);
    }
  });

  it("a dotted tail with leading zeros is refused, as for IPv4", () => {
    rejects(ds((raw) => (node(raw, 1).nodeIp = ["192.0.2.20", "2001:db8::192.0.02.33"])), "k3s-platform:nodes[1] (ds-agent-1).nodeIp[1]", /canonical/);
  });

  it("unspecified, multicast, broadcast and link-local addresses are refused where nodes dial them", () => {
    for (const [edit, path, message] of [
      [(raw: StackInput) => { node(raw, 1).host = "::0.0.0.0"; delete node(raw, 1).nodeIp; }, "nodes[1] (ds-agent-1).host", /unspecified/],
      [(raw: StackInput) => { node(raw, 1).host = "0.0.0.0"; delete node(raw, 1).nodeIp; }, "nodes[1] (ds-agent-1).host", /unspecified/],
      [(raw: StackInput) => (node(raw, 1).nodeIp = ["224.0.0.5", "2001:db8::20"]), "nodes[1] (ds-agent-1).nodeIp[0]", /multicast/],
      [(raw: StackInput) => (node(raw, 1).nodeIp = ["192.0.2.20", "fe80::20"]), "nodes[1] (ds-agent-1).nodeIp[1]", /link-local/],
      [(raw: StackInput) => (node(raw, 1).externalIp = "255.255.255.255"), "nodes[1] (ds-agent-1).externalIp", /broadcast/],
      [(raw: StackInput) => (k3s(raw).apiEndpoint = "::"), "k3s.apiEndpoint", /unspecified/],
    ] as const) {
      rejects(ds(edit), `k3s-platform:${path}`, message);
    }
  });

  it("a loopback host is an SSH tunnel only with nodeIp; without it every node would dial itself", () => {
    rejects(ds((raw) => { node(raw, 1).host = "127.0.0.1"; delete node(raw, 1).nodeIp; }), "k3s-platform:nodes[1] (ds-agent-1).host", /loopback.*set nodeIp/);
    const tunnel = parseStackConfig(ds((raw) => { node(raw, 1).host = "127.0.0.1"; node(raw, 1).ssh = { port: 2222 }; }));
    assert.ok(tunnel.ok, tunnel.ok ? "" : tunnel.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
    rejects(ds((raw) => (node(raw, 1).nodeIp = ["192.0.2.20", "::1"])), "k3s-platform:nodes[1] (ds-agent-1).nodeIp[1]", /loopback/);
  });

  // Oracle: the WHATWG URL parser (what curl-like clients read), never ipaddr.js.
  const whatwg = (v: string) => new URL(`https://[${v}]/`).hostname.slice(1, -1);
  const quad = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((q) => q.join("."));

  it("an IPv4-mapped host or address (::ffff:a.b.c.d, either spelling) is refused: it is the IPv4 host to curl and Go, a second spelling the duplicate check would miss", () => {
    fc.assert(
      fc.property(quad, fc.boolean(), fc.constantFrom("host", "apiEndpoint", "apiVip", "dnsUpstream"), (q, hex, field) => {
        const mapped = hex ? whatwg(`::ffff:${q}`) : `::ffff:${q}`;
        assert.match(whatwg(mapped), /^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/, "the oracle reads it as IPv4-mapped");
        const r = parseStackConfig(ds((raw) => {
          if (field === "host") node(raw, 1).host = mapped;
          else if (field === "apiEndpoint") k3s(raw).apiEndpoint = mapped;
          else if (field === "apiVip") k3s(raw).apiVip = { address: mapped, interface: "eth0" };
          else raw.dns = { ...raw.dns, upstreams: [mapped] };
        }));
        assert.ok(!r.ok && r.issues.some((i) => /IPv4-mapped/.test(i.message)), `${field}: ${mapped} accepted`);
      }),
      { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 50) },
    );
  });

  it("two spellings of one IPv6 host (case, leading zeros, compression, a dotted tail) are one host: the duplicate check fires", () => {
    const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(groups, fc.boolean(), (g, dotted) => {
        const canonical = whatwg(g.map((x) => x.toString(16)).join(":"));
        fc.pre(!/^::ffff:/.test(canonical) && !/^(fe[89ab]|ff)/.test(canonical) && canonical !== "::" && canonical !== "::1");
        const head = g.slice(0, dotted ? 6 : 8).map((x) => x.toString(16).padStart(4, "0").toUpperCase()).join(":");
        const tail = dotted ? `:${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}` : "";
        const spelled = head + tail;
        fc.pre(whatwg(spelled) === canonical && spelled !== canonical); // the oracle: one address
        const r = parseStackConfig(ds((raw) => {
          node(raw, 0).host = canonical;
          node(raw, 1).host = spelled;
        }));
        assert.ok(!r.ok && r.issues.some((i) => /duplicate host/.test(i.message)), `${canonical} and ${spelled} both accepted: ${r.ok ? "" : r.issues.map((i) => i.message).join("; ")}`);
      }),
      { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 50) },
    );
  });
});
