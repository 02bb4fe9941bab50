import { strict as assert } from "node:assert";
import { cronProblem } from "../../../components/config/cron";
import { isCanonicalIp, isDnsName } from "../../../components/config/net";
import { StackInput, stackSchema } from "../../../components/config/schema";
import { splitStackConfig } from "../../../components/config/stack-file";
import { nearest, resolveDefaults, secretIssues } from "../../../components/config/validate";
import { surfaceFindings } from "../../../components/config/surfaces";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { FLAGS, hasSubcommand, releaseOf, versionGaps } from "../../../components/config/flags";
import { installEnv } from "../../../components/k3s/install";
import { nodeContext } from "../../../components/config/context";
import { configYamlObject } from "../../../components/k3s/config-yaml";
import { renderSecretDropIn } from "../../../components/k3s/secrets-dropin";
import { nodeChildNames } from "../../../components/names";
import { planCluster, planNode } from "../../../components/plan/node";
import { renderTenant } from "../../../components/tenants/render";
import { ConfigError } from "../../../components/config/validate";
import { runProgram } from "../../helpers/program";
import { sampleRaw, variant } from "../../helpers/samples";

type Node = StackInput["nodes"][number];
type K3s = NonNullable<StackInput["k3s"]>;

/** Asserts the config is rejected with an issue at exactly `path` whose message matches. */
function rejects(raw: StackInput, path: string, message: RegExp): void {
  const result = parseStackConfig(raw);
  assert.equal(result.ok, false, `expected ${path} to be rejected`);
  if (result.ok) return;
  const hit = result.issues.find((i) => i.path === path && message.test(i.message));
  assert.ok(hit, `no issue at ${path} matching ${message}; got:\n${result.issues.map((i) => `${i.path}: ${i.message}`).join("\n")}`);
}

const accepts = (raw: StackInput) => {
  const r = parseStackConfig(raw);
  assert.ok(r.ok, r.ok ? "" : r.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return r.ok ? r.config : undefined!;
};

const k3s = (raw: StackInput): K3s => (raw.k3s ??= {});

/**
 * Adds an exception for every allowlist finding (surfaces.ts), so the rule under test is what
 * refuses: exceptions never override the CIS profile, the flag classes or the value shapes.
 */
function exceptingAll(raw: StackInput): StackInput {
  const parsed = stackSchema.safeParse(raw);
  if (!parsed.success) return raw;
  const settings = [...new Set(surfaceFindings(resolveDefaults(parsed.data)).filter((f) => !f.unexceptable).map((f) => f.setting))];
  if (settings.length) k3s(raw).exceptions = settings.map((setting) => ({ setting, reason: "the rule under test is another one, not the allowlist" }));
  return raw;
}
const prodWith = (edit: (k: K3s, raw: StackInput) => void) => variant("prod", (r) => edit(k3s(r), r));

describe("config values: hostile pass-through, versions, and the format each consumer accepts", () => {
  describe("pass-through flags (issue 11: prod sample plus one key)", () => {
    const at = (map: string, key: string) => `k3s-platform:k3s.${map}${/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`}`;
    const server = (key: string) => at("extraServerConfig", key);
    const agent = (key: string) => at("extraAgentConfig", key);
    const cases: Array<[string, (k: K3s) => void, string, RegExp]> = [
      ["protect-kernel-defaults: false", (k) => (k.extraServerConfig = { "protect-kernel-defaults": false }), server("protect-kernel-defaults"), /CIS requires protect-kernel-defaults: true/],
      ["write-kubeconfig-mode 0644", (k) => (k.extraServerConfig = { "write-kubeconfig-mode": "0644" }), server("write-kubeconfig-mode"), /0644 is looser than 0600/],
      ["agent kubelet anonymous-auth", (k) => (k.extraAgentConfig = { "kubelet-arg": ["anonymous-auth=true", "read-only-port=10255"] }), agent("kubelet-arg"), /anonymous-auth=true/],
      ["agent kubelet read-only-port", (k) => (k.extraAgentConfig = { "kubelet-arg": ["anonymous-auth=true", "read-only-port=10255"] }), agent("kubelet-arg"), /read-only-port=10255/],
      ["weak kubelet ciphers", (k) => (k.extraAgentConfig = { "kubelet-arg": ["tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA"] }), agent("kubelet-arg"), /outside the CIS list: TLS_RSA_WITH_RC4_128_SHA/],
      ["admission plugins override", (k) => (k.extraServerConfig = { "kube-apiserver-arg": ["enable-admission-plugins=NodeRestriction"] }), server("kube-apiserver-arg"), /lacks EventRateLimit/],
      ["PSA config override", (k) => (k.extraServerConfig = { "kube-apiserver-arg": ["admission-control-config-file="] }), server("kube-apiserver-arg"), /no admission-control-config-file/],
      ["apiserver anonymous auth", (k) => (k.extraServerConfig = { "kube-apiserver-arg": ["anonymous-auth=true"] }), server("kube-apiserver-arg"), /anonymous-auth=true/],
      ["network policy off", (k) => (k.extraServerConfig = { "disable-network-policy": true }), server("disable-network-policy"), /NetworkPolicies enforced/],
      ["etcd-s3-secret-key", (k) => (k.extraServerConfig = { "etcd-s3-secret-key": "s3cr3t" }), server("etcd-s3-secret-key"), /credential.*k3s-platform:etcdS3SecretKey/],
      ["etcd-s3-access-key", (k) => (k.extraServerConfig = { "etcd-s3-access-key": "AKIA" }), server("etcd-s3-access-key"), /credential.*k3s-platform:etcdS3AccessKey/],
      ["vpn-auth", (k) => (k.extraAgentConfig = { "vpn-auth": "name=tailscale,joinKey=x" }), agent("vpn-auth"), /credential/],
      ["cluster-reset", (k) => (k.extraServerConfig = { "cluster-reset": true }), server("cluster-reset"), /destructive/],
      ["cluster-reset-restore-path", (k) => (k.extraServerConfig = { "cluster-reset-restore-path": "/tmp/s" }), server("cluster-reset-restore-path"), /destructive/],
      ["data-dir", (k) => (k.extraServerConfig = { "data-dir": "/data" }), server("data-dir"), /not supported/],
      ["etcd-disable-snapshots", (k) => (k.extraServerConfig = { "etcd-disable-snapshots": true }), server("etcd-disable-snapshots"), /k3s\.etcdSnapshots/],
      ["config", (k) => (k.extraAgentConfig = { config: "/tmp/other.yaml" }), agent("config"), /not supported/],
      ["etcd snapshot flags are typed", (k) => (k.extraServerConfig = { "etcd-snapshot-retention": 3 }), server("etcd-snapshot-retention"), /set k3s\.etcdSnapshots\.retention instead/],
      ["audit log retention", (k) => (k.extraServerConfig = { "kube-apiserver-arg": ["audit-log-maxage=1"] }), server("kube-apiserver-arg"), /audit-log-maxage of at least 30 \(got 1\)|audit-log-maxage is set twice/],
      ["stream timeout 0", (k) => (k.extraAgentConfig = { "kubelet-arg": ["streaming-connection-idle-timeout=0"] }), agent("kubelet-arg"), /streaming-connection-idle-timeout=0/],
      ["an own encryption config", (k) => (k.extraServerConfig = { "kube-apiserver-arg": ["encryption-provider-config=/etc/identity.yaml"] }), `${server("kube-apiserver-arg")}[0]`, /set k3s-platform:encryption \(mode: custom\) instead/],
      ["a typed kubelet setting", (k) => (k.extraAgentConfig = { "kubelet-arg": ["max-pods=500"] }), `${agent("kubelet-arg")}[0]`, /set k3s\.kubelet\.maxPods instead/],
      ["component arg shape", (k) => (k.extraAgentConfig = { "kubelet-arg": ["--max-pods 250"] }), `${agent("kubelet-arg")}[0]`, /not name=value/],
      ["typo in a flag", (k) => (k.extraServerConfig = { "etcd-expose-metric": true }), server("etcd-expose-metric"), /did you mean etcd-expose-metrics\?/],
    ];
    for (const [name, edit, path, message] of cases) it(`refuses ${name}, with an allowlist exception too`, () => rejects(exceptingAll(prodWith(edit)), path, message));

    it("outside CIS a looser kubeconfig mode is the user's call", () => {
      accepts(variant("dev", (r) => (k3s(r).extraServerConfig = { "write-kubeconfig-mode": "0644" })));
    });

    it("classifies every flag in the table, and every non-pass-through flag says what to do instead", () => {
      for (const spec of FLAGS) {
        assert.ok(["pass-through", "managed", "secret", "destructive", "refused"].includes(spec.class), spec.name);
        if (spec.class !== "pass-through") assert.ok(spec.use && spec.use.length > 5, spec.name);
      }
    });
  });

  describe("versions (issue 10 item 2)", () => {
    it("refuses secretbox on v1.31.4 with the path and the first v1.31 release that has it", () => {
      rejects(
        variant("dev", (r) => Object.assign(r, { k3s: { ...r.k3s, version: "v1.31.4+k3s1" }, encryption: { enabled: true, provider: "secretbox" } })),
        "k3s-platform:encryption.provider",
        /^secretbox needs K3s v1\.31\.8\+ on the v1\.31 line \(pinned v1\.31\.4\+k3s1\)$/,
      );
      for (const v of ["v1.30.12+k3s1", "v1.31.8+k3s1", "v1.32.4+k3s1", "v1.33.0+k3s1"]) {
        accepts(variant("dev", (r) => Object.assign(r, { k3s: { ...r.k3s, version: v }, encryption: { enabled: true, provider: "secretbox" } })));
      }
      rejects(
        variant("dev", (r) => Object.assign(r, { k3s: { ...r.k3s, version: "v1.32.3+k3s1" }, encryption: { enabled: true, provider: "secretbox" } })),
        "k3s-platform:encryption.provider",
        /needs K3s v1\.32\.4\+ on the v1\.32 line/,
      );
    });

    it("gates pass-through flags too: per line, and lines that never got a backport", () => {
      rejects(
        variant("dev", (r) => Object.assign(k3s(r), { version: "v1.30.1+k3s1", extraServerConfig: { "supervisor-metrics": true } })),
        'k3s-platform:k3s.extraServerConfig["supervisor-metrics"]',
        /"supervisor-metrics" needs K3s v1\.30\.2\+ on the v1\.30 line \(pinned v1\.30\.1\+k3s1\)/,
      );
      rejects(
        variant("dev", (r) => Object.assign(k3s(r), { version: "v1.31.9+k3s1", extraAgentConfig: { "nonroot-devices": true } })),
        'k3s-platform:k3s.extraAgentConfig["nonroot-devices"]',
        /needs K3s v1\.32\.0\+ \(not on the v1\.31 line/,
      );
    });

    it("a channel stands for its newest release: v1.31 has secretbox (v1.31.8) but not nonroot-devices", () => {
      accepts(variant("dev", (r) => Object.assign(r, { k3s: { ...r.k3s, version: undefined, channel: "v1.31" }, encryption: { enabled: true, provider: "secretbox" } })));
      rejects(
        variant("dev", (r) => Object.assign(k3s(r), { version: undefined, channel: "v1.31", extraAgentConfig: { "nonroot-devices": true } })),
        'k3s-platform:k3s.extraAgentConfig["nonroot-devices"]',
        /channel v1\.31/,
      );
      assert.deepEqual(versionGaps({ "nonroot-devices": true, "secrets-encryption-provider": "secretbox" }, releaseOf({ channel: "stable" })!), []);
    });

    it("refuses releases older than the oldest supported one", () => {
      rejects(variant("dev", (r) => (k3s(r).version = "v1.29.9+k3s1")), "k3s-platform:k3s.version", /older than the oldest supported K3s release v1\.30\.0/);
      rejects(variant("dev", (r) => Object.assign(k3s(r), { version: undefined, channel: "v1.29" })), "k3s-platform:k3s.channel", /older than the oldest supported/);
    });

    it("knows the subcommands the lifecycle scripts call", () => {
      assert.equal(hasSubcommand("secrets-encrypt rotate-keys", { version: "v1.30.4+k3s1" }), false);
      assert.equal(hasSubcommand("secrets-encrypt rotate-keys", { version: "v1.30.5+k3s1" }), true);
      assert.equal(hasSubcommand("secrets-encrypt rotate-keys", { version: "v1.31.0+k3s1" }), false);
      assert.equal(hasSubcommand("token rotate", { version: "v1.30.0+k3s1" }), true);
      assert.equal(hasSubcommand("certificate rotate", { version: "v1.30.0+k3s1" }), true);
      assert.equal(hasSubcommand("certificate check --output", { version: "v1.31.8+k3s1" }), false);
      assert.equal(hasSubcommand("certificate check --output", { version: "v1.31.9+k3s1" }), true);
      assert.equal(hasSubcommand("secrets-encrypt rotate-keys", { channel: "latest" }), true);
    });
  });

  describe("values where they land (issue 10 item 3)", () => {
    it("NO_PROXY holds the node networks, never a node address, the API endpoint, tls-sans, pod/service CIDRs and the cluster domain (issue 26)", () => {
      const edit = (r: StackInput) => {
        (r.nodes[1] as Node).nodeIp = "198.51.100.120";
        (r.nodes[1] as Node).externalIp = "203.0.113.120";
        k3s(r).apiEndpoint = "api.staging.example.com";
      };
      // 203.0.113.120 is in no noProxy entry: refused, naming node and address, before any host is touched.
      rejects(variant("staging", edit), "k3s-platform:k3s.proxy.noProxy", /node stg-agent-1 \(nodes\[1\]\): address 203\.0\.113\.120 is covered by no CIDR or address of k3s\.nodeNetworks or k3s\.proxy\.noProxy/);
      // Many uncovered nodes: one issue naming the first three and how many more.
      const many = parseStackConfig(variant("staging", (r) => {
        for (let i = 0; i < 40; i++) r.nodes.push({ ...structuredClone(r.nodes[1]!), name: `far-${i}`, host: `192.0.2.${i + 1}` } as Node);
        delete k3s(r).serviceLb;
      }));
      assert.ok(!many.ok);
      const issues = many.ok ? [] : many.issues.filter((i) => i.path === "k3s-platform:k3s.proxy.noProxy");
      assert.equal(issues.length, 1, issues.map((i) => i.message).join("\n"));
      assert.match(issues[0]!.message, /far-0 .*192\.0\.2\.1;.*far-2 .*and 37 more address\(es\) are covered by no CIDR/);
      const config = loadStackConfig(variant("staging", (r) => { edit(r); k3s(r).nodeNetworks = ["198.51.100.0/24", "203.0.113.0/24"]; }));
      const noProxy = installEnv(config, config.nodes[1]!).NO_PROXY!.split(",");
      for (const want of ["203.0.113.0/24", "198.51.100.0/24", "api.staging.example.com", "k3s-staging.example.com", "10.52.0.0/16", "10.53.0.0/16", "localhost", "127.0.0.0/8", ".svc", ".cluster.local"]) {
        assert.ok(noProxy.includes(want), `${want} missing from NO_PROXY ${noProxy.join(",")}`);
      }
      for (const address of config.nodes.flatMap((n) => [n.host, ...(n.nodeIp ?? []), ...(n.externalIp ?? [])])) {
        assert.ok(!noProxy.includes(address), `${address}: a node address in NO_PROXY changes every node's env file with the membership`);
      }
      // A node added in a covered network leaves every node's NO_PROXY as it was.
      const grown = loadStackConfig(variant("staging", (r) => {
        edit(r);
        k3s(r).nodeNetworks = ["198.51.100.0/24", "203.0.113.0/24"];
        r.nodes.push({ ...structuredClone(r.nodes[1]!), name: "stg-agent-9", host: "198.51.100.99", nodeIp: undefined, externalIp: "203.0.113.99" } as Node);
      }));
      for (const n of config.nodes) assert.equal(installEnv(grown, grown.nodes.find((g) => g.name === n.name)!).NO_PROXY, installEnv(config, n).NO_PROXY, n.name);
      // The declared networks must hold every node's own address (the firewall admits node traffic from them).
      rejects(variant("dev", (r) => (k3s(r).nodeNetworks = ["192.0.2.0/28"])), "k3s-platform:nodes[1] (dev-agent-1)", /address 192\.0\.2\.\d+ is in none of k3s\.nodeNetworks/);
    });

    it("a noProxy that covers the nodes only by listing their addresses is a warning naming them: the next membership change would edit it and restart every node (review of issue 26)", () => {
      const staging = (noProxy: string[], containerdNoProxy?: string[]) =>
        parseStackConfig(variant("staging", (r) => (k3s(r).proxy = { ...k3s(r).proxy!, noProxy, ...(containerdNoProxy ? { containerdHttpProxy: "http://proxy.example.com:3128", containerdNoProxy } : {}) })));
      const addresses = sampleRaw("staging").nodes.map((n) => n.host as string);
      const listing = staging(addresses);
      assert.ok(listing.ok, listing.ok ? "" : listing.issues.map((i) => i.message).join("\n"));
      const warned = listing.warnings.filter((w) => w.path === "k3s-platform:k3s.proxy.noProxy" && /only by listing them/.test(w.message));
      assert.equal(warned.length, 1, JSON.stringify(listing.warnings));
      for (const n of sampleRaw("staging").nodes) assert.ok(warned[0]!.message.includes(`${n.host as string} (${n.name})`), warned[0]!.message);
      assert.match(warned[0]!.message, /changes NO_PROXY on every node and restarts each; declare the node networks in k3s\.nodeNetworks/);
      // A CIDR (in noProxy, or k3s.nodeNetworks) covering them: no warning, with or without the addresses listed too.
      for (const covered of [staging(["198.51.100.0/24"]), staging([...addresses, "198.51.100.0/24"]), parseStackConfig(variant("staging", (r) => ((k3s(r).nodeNetworks = ["198.51.100.0/24"]), (k3s(r).proxy!.noProxy = addresses))))]) {
        assert.ok(covered.ok && !covered.warnings.some((w) => /only by listing them/.test(w.message)), JSON.stringify(covered.ok && covered.warnings));
      }
      // containerd's own list is checked under its own path.
      const containerd = staging(["198.51.100.0/24"], addresses);
      assert.ok(containerd.ok && containerd.warnings.some((w) => w.path === "k3s-platform:k3s.proxy.containerdNoProxy" && /CONTAINERD_NO_PROXY covers node address/.test(w.message)), JSON.stringify(containerd.ok && containerd.warnings));
    });

    it("NO_PROXY keeps the first server's host name the nodes join through (review of issue 26)", () => {
      // dev: firewall disabled, so a host name without nodeIp is accepted; K3s then dials the first
      // server by that name (server: https://<name>:6443): no node network covers a name.
      const named = (extra: boolean) =>
        loadStackConfig(variant("dev", (r) => {
          (r.nodes[0] as Node).host = "dev-server-1.lab.example.com";
          k3s(r).proxy = { httpsProxy: "http://proxy.example.com:3128", noProxy: ["192.0.2.0/24"] };
          if (extra) r.nodes.push({ ...structuredClone(r.nodes[1]!), name: "dev-agent-9", host: "192.0.2.99" } as Node);
        }));
      const config = named(false);
      for (const n of config.nodes) {
        const noProxy = installEnv(config, n).NO_PROXY!.split(",");
        assert.ok(noProxy.includes("dev-server-1.lab.example.com"), `${n.name}: NO_PROXY ${noProxy.join(",")}`);
      }
      // Still independent of the membership: an added agent changes no node's NO_PROXY.
      const grown = named(true);
      for (const n of config.nodes) assert.equal(installEnv(grown, grown.nodes.find((g) => g.name === n.name)!).NO_PROXY, installEnv(config, n).NO_PROXY, n.name);
    });

    it("with a proxy, a node whose host is a name and has no nodeIp (K3s dials the address it detects, which NO_PROXY must cover): refused in prod naming the node, a warning elsewhere; nodeIp or `*` settles it (issue 26)", () => {
      // Only without the firewall's node scoping (mode open already needs nodeIp for a name host).
      const named = (env: "prod" | "dev", edit: (node: Node, raw: StackInput) => void = () => {}) =>
        variant(env, (r) => {
          const node = r.nodes.find((n) => n.role === "agent") as Node;
          Object.assign(node, { host: `${node.name}.nodes.example.com`, nodeIp: undefined });
          k3s(r).firewall = { mode: "ignore" };
          k3s(r).exceptions = [{ setting: "firewall.mode=ignore", reason: "the hosts' firewall is managed by the platform team" }];
          k3s(r).proxy = { httpsProxy: "http://proxy.example.com:3128", noProxy: env === "prod" ? [] : ["192.0.2.0/24"] };
          edit(node, r);
        });
      rejects(named("prod"), "k3s-platform:nodes[3] (prod-agent-1).nodeIp", /host prod-agent-1\.nodes\.example\.com is a name and nodeIp is not set, so K3s dials this node on the address it detects on the host.*set nodes\[3\]\.nodeIp/);
      accepts(named("prod", (n) => (n.nodeIp = "203.0.113.21")));
      accepts(named("prod", (_n, r) => (k3s(r).proxy!.noProxy = ["*"])));
      const dev = parseStackConfig(named("dev"));
      assert.ok(dev.ok, dev.ok ? "" : dev.issues.map((i) => i.message).join("\n"));
      assert.ok(dev.warnings.some((w) => w.path === "k3s-platform:nodes[1] (dev-agent-1).nodeIp" && /is a name and nodeIp is not set/.test(w.message)), JSON.stringify(dev.warnings));
      // Without a proxy nothing goes through one: no finding.
      const direct = parseStackConfig(named("dev", (_n, r) => delete k3s(r).proxy));
      assert.ok(direct.ok && !direct.warnings.some((w) => /nodeIp is not set/.test(w.message)));
    });

    it("API server allow: a server known only by DNS name is refused naming both paths; nodeIp is used when set", () => {
      const byName = (nodeIp?: string) =>
        variant("dev", (r) => {
          Object.assign(r.nodes[0] as Node, { host: "node-1.example.com", ...(nodeIp ? { nodeIp } : {}) });
          r.tenants![0]!.network = { allowApiServer: true };
        });
      rejects(byName(), "k3s-platform:tenants[0] (apps).network.allowApiServer", /nodes\[0\] \(dev-server-1\) has host "node-1\.example\.com".*set nodes\[0\]\.nodeIp/);
      const config = accepts(byName("192.0.2.10"));
      const policy = renderTenant(config, config.tenants[0]!).find((o) => o.metadata.name === "allow-apiserver")!;
      assert.deepEqual((policy.spec as { egress: Array<{ to: unknown[] }> }).egress[0]!.to, [{ ipBlock: { cidr: "192.0.2.10/32" } }]);
    });

    it("accepts canonical addresses only, so the duplicate-host check holds", () => {
      for (const host of ["3221225994", "0300.0.2.10", "0xc0.0.2.10", "0xc000020a", "192.0.2.010", "10.1", "1.2.3.4.5"]) {
        assert.equal(isCanonicalIp(host) || isDnsName(host), false, host);
        rejects(variant("dev", (r) => ((r.nodes[1] as Node).host = host)), "k3s-platform:nodes[1] (dev-agent-1).host", /canonical IP address or an RFC 1123 DNS name/);
      }
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).nodeIp = "0300.0.2.21")), "k3s-platform:nodes[1] (dev-agent-1).nodeIp", /canonical form/);
      rejects(
        variant("dev", (r) => {
          (r.nodes[0] as Node).host = "2001:db8::10";
          (r.nodes[1] as Node).host = "2001:DB8:0:0::10";
        }),
        "k3s-platform:nodes[1] (dev-agent-1).host",
        /duplicate host/,
      );
      rejects(variant("dev", (r) => ((r.nodes[1] as Node).host = "a".repeat(64) + ".example.com")), "k3s-platform:nodes[1] (dev-agent-1).host", /RFC 1123/);
    });

    it("proxy, NO_PROXY and registry values are what Go's proxy code and containerd accept", () => {
      const proxy = (p: Record<string, unknown>) => variant("staging", (r) => (k3s(r).proxy = { httpProxy: "http://proxy.example.com:3128", ...p }));
      rejects(proxy({ httpsProxy: "http://user:pw@proxy.example.com:3128" }), "k3s-platform:k3s.proxy.httpsProxy", /without credentials/);
      rejects(proxy({ httpsProxy: "ftp://proxy.example.com" }), "k3s-platform:k3s.proxy.httpsProxy", /http:\/\/, https:\/\/ or socks5/);
      rejects(proxy({ noProxy: ["not a host"] }), "k3s-platform:k3s.proxy.noProxy[0]", /NO_PROXY entries/);
      // 198.51.100.0/24: the staging nodes' network (validation: NO_PROXY must cover every node, issue 26).
      accepts(proxy({ noProxy: ["*.internal.example.com", ".corp", "10.0.0.0/8", "registry:5000", "[2001:db8::1]:443", "198.51.100.0/24"] }));
      const mirror = (m: Record<string, unknown>) => variant("staging", (r) => (k3s(r).registries = { mirrors: m as never }));
      rejects(mirror({ "docker.io": { endpoint: ["ftp://mirror.example.com"] } }), 'k3s-platform:k3s.registries.mirrors["docker.io"].endpoint[0]', /http\(s\)/);
      rejects(mirror({ "docker.io": { endpoint: ["https://u:p@mirror.example.com"] } }), 'k3s-platform:k3s.registries.mirrors["docker.io"].endpoint[0]', /registryAuth/);
      rejects(mirror({ "docker.io/library": { endpoint: ["https://mirror.example.com"] } }), `k3s-platform:k3s.registries.mirrors["docker.io/library"]`, /invalid key: registry must be host\[:port\]/);
      accepts(mirror({ "*": { endpoint: ["https://mirror.example.com:5000"] }, "registry.example.com:5000": { endpoint: ["http://10.0.0.5:5000"] } }));
    });

    it("Kubernetes values: no negative quantity, network addresses in ipBlocks, image references, absolute paths", () => {
      rejects(variant("dev", (r) => (r.tenants![0]!.quota!.requestsMemory = "-4Gi")), "k3s-platform:tenants[0] (apps).quota.requestsMemory", /must not be negative/);
      rejects(variant("dev", (r) => (r.tenants![0]!.limits = { pvc: { max: -1 } })), "k3s-platform:tenants[0] (apps).limits.pvc.max", /must not be negative/);
      rejects(
        variant("dev", (r) => (r.tenants![0]!.network = { allows: [{ name: "office", cidrs: ["10.0.0.1/24"] }] })),
        "k3s-platform:tenants[0] (apps).network.allows[0].cidrs[0]",
        /host bits set/,
      );
      rejects(variant("dev", (r) => (r.dns = { nodeLocal: { enabled: true, image: "Not An Image" } })), "k3s-platform:dns.nodeLocal.image", /image reference/);
      rejects(variant("dev", (r) => (k3s(r).datastore = { type: "external", caFile: "certs/ca.pem" })), "k3s-platform:k3s.datastore.caFile", /absolute path/);
      rejects(variant("dev", (r) => (k3s(r).kubelet = { evictionHard: { "nodefs.available": "150%" } })), 'k3s-platform:k3s.kubelet.evictionHard["nodefs.available"]', /at most 100%/);
      rejects(
        variant("dev", (r) => (r.tenants![0]!.limits = { container: { maxLimitRequestRatio: { cpu: "0.5" } } })),
        "k3s-platform:tenants[0] (apps).limits.container.maxLimitRequestRatio.cpu",
        /at least 1/,
      );
      for (const name of ["metrics--http", "a-very-long-port-name", "8080"]) {
        rejects(
          variant("dev", (r) => (r.tenants![0]!.network = { allows: [{ name: "web", namespaces: ["ingress"], ports: [{ port: name }] }] })),
          "k3s-platform:tenants[0] (apps).network.allows[0].ports[0].port",
          /IANA service name/,
        );
      }
      accepts(variant("dev", (r) => (r.tenants![0]!.network = { allows: [{ name: "web", namespaces: ["ingress"], ports: [{ port: "http-metrics" }, { port: 8080 }] }] })));
      rejects(variant("dev", (r) => (r.dns = { hosts: { "3221225994": "192.0.2.50" } })), `k3s-platform:dns.hosts["3221225994"]`, /invalid key: not a DNS name/);
    });
  });

  describe("guardrails (issue 11 item 4)", () => {
    for (const ns of ["kube-system", "kube-public", "kube-node-lease", "default", "cis-operator-system"]) {
      it(`refuses ${ns} as a tenant (reserved or exempt from Pod Security in psa.yaml)`, () =>
        rejects(variant("dev", (r) => (r.tenants = [{ namespace: ns }])), `k3s-platform:tenants[0] (${ns}).namespace`, /cannot be tenants/));
    }

    it("detects generated-name collisions: an allow named dns is the generated allow-dns", () => {
      rejects(
        variant("dev", (r) => (r.tenants![0]!.network = { allows: [{ name: "dns", cidrs: ["10.0.0.0/8"] }] })),
        "k3s-platform:tenants[0] (apps).network.allows[0].name",
        /collides with the object generated for k3s-platform:tenants\[0\]\.namespace/,
      );
      // Different namespaces whose generated Pulumi names meet: team + allow-x vs team-allow + x.
      rejects(
        variant("dev", (r) => {
          r.tenants = [
            { namespace: "team", network: { allows: [{ name: "allow-dns", cidrs: ["10.0.0.0/8"] }] } },
            { namespace: "team-allow" },
          ];
        }),
        "k3s-platform:tenants[0] (team).network.allows[0].name",
        /collides/,
      );
    });

    it("node child resource names stay distinct for node names built from other nodes' child names", () => {
      const names = ["a", "a-file", "a-secret", "a-file-os", "a-file-config", "a-secret-secrets", "a-os-prep", "a-apply"];
      const config = accepts(
        variant("staging", (r) => {
          r.nodes = names.map((name, i) => ({ name, host: `198.51.100.${30 + i}`, role: i === 0 ? "server" : "agent" }));
          k3s(r).registries = { mirrors: { "docker.io": { endpoint: ["https://registry.example.com"] } } };
          delete k3s(r).serviceLb; // its pool names the sample's nodes, replaced here
        }),
      );
      const all = planCluster(config).nodes.flatMap(nodeChildNames);
      assert.equal(new Set(all).size, all.length, all.join(" "));
    });

    it("host keys: required in prod on every node and the bastion, a warning elsewhere", () => {
      rejects(variant("prod", (r) => delete (r.nodes[4] as Node).ssh!.hostKey), "k3s-platform:nodes[4] (prod-agent-2).ssh.hostKey", /required in prod/);
      rejects(variant("prod", (r) => delete r.ssh!.bastion!.hostKey), "k3s-platform:ssh.bastion.hostKey", /required in prod/);
      const dev = parseStackConfig(sampleRaw("dev"));
      assert.ok(dev.ok);
      assert.deepEqual(dev.warnings.map((w) => w.path), ["k3s-platform:nodes[0] (dev-server-1).ssh.hostKey", "k3s-platform:nodes[1] (dev-agent-1).ssh.hostKey"]);
    });

    it("suggests the nearest key for a typo, at every level", () => {
      rejects({ ...(sampleRaw("dev") as Record<string, unknown>), tenant: [] } as unknown as StackInput, "k3s-platform:tenant", /did you mean tenants\?/);
      rejects(variant("dev", (r) => ((k3s(r) as Record<string, unknown>).clusterCIDR = "10.1.0.0/16")), "k3s-platform:k3s", /clusterCIDR \(did you mean clusterCidr\?\)/);
      rejects(variant("dev", (r) => (((r.nodes[0] as Node).ssh as Record<string, unknown>) = { hostkey: "x" })), "k3s-platform:nodes[0] (dev-server-1).ssh", /did you mean hostKey\?/);
      assert.equal(nearest("zzzzzz", ["tenants", "nodes"]), undefined);
    });

    it("plaintext values for secure keys are refused with the command that stores them encrypted", () => {
      const file = splitStackConfig({
        "k3s-platform:token": "hunter2",
        "k3s-platform:sshPrivateKey": { secure: "v1:abc" },
        "k3s-platform:registryAuth": { "docker.io": { username: { secure: "v1:a" }, password: { secure: "v1:b" } } },
        "k3s-platform:encryptionKeys": { secretbox: [{ name: "k", secret: "plain" }] },
      });
      assert.deepEqual([...file.secrets].sort(), ["registryAuth", "sshPrivateKey"]);
      assert.deepEqual(file.issues.map((i) => i.path), ["k3s-platform:token", "k3s-platform:encryptionKeys"]);
      assert.match(file.issues[0]!.message, /pulumi config set --secret k3s-platform:token <value>/);
      assert.doesNotMatch(JSON.stringify(file.issues), /hunter2|plain"/);
    });
  });

  describe("the program reads config through the same reader", () => {
    it("refuses an unknown top-level key (tenant: for tenants:) before registering anything", async () => {
      const { tenants, ...raw } = sampleRaw("prod") as Record<string, unknown>;
      const { error, resources } = runProgram({ ...raw, tenant: tenants }, "prod");
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /k3s-platform:tenant: unknown config key \(did you mean tenants\?\)/);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(resources, []);
    });

    it("refuses a plaintext secure key, and accepts the same key stored as a secret", () => {
      const raw = sampleRaw("dev") as Record<string, unknown>;
      const plain = runProgram({ ...raw, token: "hunter2" }, "dev", ["token"]);
      assert.match(String(plain.error), /k3s-platform:token: plaintext value for a secret key.*pulumi config set --secret k3s-platform:token/);
      assert.equal(runProgram({ ...raw, token: "hunter2" }, "dev").error, undefined);
    });
  });

  describe("etcd snapshots (issue 11 item 2 / issue 13 backups)", () => {
    const withS3 = (edit: (r: StackInput) => void = () => {}) =>
      variant("prod", (r) => {
        k3s(r).etcdSnapshots = { scheduleCron: "0 */6 * * *", retention: 20, compress: true, s3: { endpoint: "s3.eu-west-1.amazonaws.com", bucket: "k3s-snapshots", folder: "prod", region: "eu-west-1", timeout: "5m" } };
        edit(r);
      });

    it("typed flags in config.yaml, S3 credentials only in the servers' secrets drop-in", () => {
      const config = loadStackConfig(withS3());
      const flags = configYamlObject(nodeContext(config, config.nodes[0]!));
      assert.equal(flags["etcd-snapshot-schedule-cron"], "0 */6 * * *");
      assert.equal(flags["etcd-s3"], true);
      assert.equal(flags["etcd-s3-bucket"], "k3s-snapshots");
      assert.equal(flags["etcd-s3-timeout"], "5m");
      assert.ok(!("etcd-s3-access-key" in flags) && !("etcd-s3-secret-key" in flags));
      assert.ok(!("etcd-s3" in configYamlObject(nodeContext(config, config.nodes[3]!))), "agents get no etcd flags");
      const dropIn = renderSecretDropIn(nodeContext(config, config.nodes[1]!), { token: "t", etcdS3AccessKey: "AKIAEXAMPLE", etcdS3SecretKey: "SECRETEXAMPLE" });
      assert.match(dropIn, /etcd-s3-access-key: AKIAEXAMPLE/);
      assert.match(dropIn, /etcd-s3-secret-key: SECRETEXAMPLE/);
      const plan = planNode(config, config.nodes[1]!);
      assert.ok(plan.files.every((f) => !/AKIAEXAMPLE|SECRETEXAMPLE/.test(f.content)));
      assert.deepEqual(plan.finalFlags.secretFlags, ["token", "agent-token", "etcd-s3-access-key", "etcd-s3-secret-key"]);
    });

    it("only with embedded etcd; the cron is validated; keys come in pairs", () => {
      rejects(variant("dev", (r) => Object.assign(k3s(r), { datastore: { type: "sqlite" }, etcdSnapshots: { retention: 3 } })), "k3s-platform:k3s.etcdSnapshots", /need k3s\.datastore\.type etcd/);
      rejects(variant("dev", (r) => (k3s(r).etcdSnapshots = { scheduleCron: "0 */6 * *" })), "k3s-platform:k3s.etcdSnapshots.scheduleCron", /expected 5 fields/);
      rejects(variant("dev", (r) => (k3s(r).etcdSnapshots = { scheduleCron: "61 * * * *" })), "k3s-platform:k3s.etcdSnapshots.scheduleCron", /outside 0-59/);
      for (const ok of ["0 */12 * * *", "@daily", "@every 6h", "30 2 * * MON-FRI", "0 0 1 JAN,JUL ?"]) assert.equal(cronProblem(ok), undefined, ok);
      const config = loadStackConfig(withS3());
      assert.deepEqual(secretIssues(config, new Set(["etcdS3AccessKey"])).map((i) => i.path), ["k3s-platform:etcdS3SecretKey"]);
      assert.deepEqual(secretIssues(config, new Set(["etcdS3AccessKey", "etcdS3SecretKey"])), []);
      assert.deepEqual(secretIssues(config, new Set()), [], "no keys: K3s uses the host's instance credentials");
      assert.deepEqual(secretIssues(loadStackConfig(sampleRaw("prod")), new Set(["etcdS3SecretKey"])).map((i) => i.path), ["k3s-platform:etcdS3SecretKey"]);
    });
  });
});
