import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { ResolvedConfig } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";
import { nodeInputs } from "../../components/node/component";
import { renderBundle } from "../../components/node/bundle";
import { planNode } from "../../components/plan/node";
import { clusterChildOf, NODE_CHILDREN, nodeChildOf } from "../../components/names";
import { policies, TYPES } from "../../policies/policies";
import {
  asPolicySdkProps,
  collectGraph,
  evaluatePack,
  GraphResource,
  policySettings,
  resourceArgs,
  runResourcePolicy,
  runStackPolicy,
  stackArgs,
  urnOf,
} from "../helpers/policy-harness";
import { sampleConfig, variant } from "../helpers/samples";

const byName = (name: string) => {
  const p = policies.find((x) => x.name === name);
  assert.ok(p, `no policy ${name}`);
  return p;
};

/** Config edits made after validation: policies must hold even for programs that skip it. */
function prodWith(edit: (c: ResolvedConfig) => void): ResolvedConfig {
  const c = structuredClone(sampleConfig("prod"));
  edit(c);
  return c;
}

const clusterResource = (config: ResolvedConfig) => ({ type: TYPES.cluster, name: config.environment, props: { config } as Record<string, unknown> });

const k8s = (type: string, name: string, namespace: string | undefined, body: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
  type,
  name: `obj-${name}`,
  props: { metadata: { name, ...(namespace ? { namespace } : {}), labels }, ...body },
});

interface ResourceCase {
  policy: string;
  pass: { type: string; name: string; props: Record<string, unknown>; additionalSecretOutputs?: string[]; parent?: string };
  fail: { type: string; name: string; props: Record<string, unknown>; additionalSecretOutputs?: string[]; parent?: string };
  expect: RegExp;
  config?: Record<string, unknown>;
}

/** A K3sNode as the program registers it: its final flags come from the real planner. */
const nodeResource = (config: ResolvedConfig, index: number) => ({
  type: TYPES.node,
  name: `${config.environment}-${config.nodes[index]!.name}`,
  props: nodeInputs(planNode(config, config.nodes[index]!)) as unknown as Record<string, unknown>,
});

const connection = (hostKey?: string, proxy?: { host: string; hostKey?: string }) => ({ host: "203.0.113.11", user: "deploy", ...(hostKey ? { hostKey } : {}), ...(proxy ? { proxy } : {}) });

const resourceCases: ResourceCase[] = [
  {
    policy: "prod-server-quorum",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.nodes = c.nodes.filter((n) => n.name !== "prod-server-3")))),
    expect: /2 server\(s\); at least 3|odd number/,
    config: { minServers: 3 },
  },
  {
    policy: "prod-datastore-ha",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.datastore = { type: "sqlite" }))),
    expect: /sqlite/,
  },
  {
    policy: "prod-secrets-encryption",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.encryption = { enabled: true, mode: "k3s", provider: "aescbc" }))),
    expect: /k3s-platform:encryption\.provider: aescbc \(the default\) is rated weak .*set encryption\.provider: secretbox/,
  },
  {
    policy: "prod-cis-hardening",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.hardening = "none"))),
    expect: /set k3s\.hardening: cis/,
  },
  {
    policy: "prod-pinned-version",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => Object.assign(c.k3s, { version: undefined, channel: "stable" }))),
    expect: /channel "stable"/,
  },
  {
    policy: "odd-server-count",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.nodes[3]!.role = "server"))),
    expect: /4 servers/,
  },
  {
    policy: "decommission-keeps-quorum",
    pass: clusterResource(prodWith((c) => (c.nodes[3]!.decommission = true))),
    fail: clusterResource(prodWith((c) => (c.nodes[0]!.decommission = c.nodes[1]!.decommission = true))),
    expect: /2 of 3 servers are decommissioned at once/,
  },
  {
    policy: "no-restricted-node-labels",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.nodes[3]!.labels["kubernetes.io/role"] = "worker"))),
    expect: /prod-agent-1: label kubernetes\.io\/role/,
  },
  {
    policy: "free-form-settings-allowlisted",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.extraServerConfig = { "etcd-arg": ["client-cert-auth=false"] }))),
    expect: /k3s\.extraServerConfig\["etcd-arg"\]\[0\]: etcd client-cert-auth=false: only true is known safe/,
  },
  {
    // Issue 27: a hook is root on every node it selects; the pack refuses it without an exception, as validation does.
    policy: "free-form-settings-allowlisted",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.hooks = [{ name: "mount-data", at: "beforeOsPrep", command: ["/usr/local/sbin/mount-data"], roles: ["agent"], timeoutSeconds: 300 }]))),
    expect: /k3s-platform:hooks\[0\]: hook mount-data runs \["\/usr\/local\/sbin\/mount-data"\] as root at beforeOsPrep on every agent/,
  },
  {
    // Issue 27: an OIDC provider for the API server, like oidc-issuer-url on the allowlist.
    policy: "free-form-settings-allowlisted",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(
      prodWith((c) => (c.k3s.apiServer.authentication = { jwt: [{ issuer: { url: "https://login.example.com", audiences: ["kubernetes"] }, claimMappings: { username: { claim: "sub", prefix: "oidc:" } } }] })),
    ),
    expect: /k3s-platform:k3s\.apiServer\.authentication\.jwt\[0\]: https:\/\/login\.example\.com becomes an identity provider of the API server/,
  },
  {
    policy: "allowlist-exceptions-reported",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(
      prodWith((c) => {
        c.k3s.extraServerConfig = { "etcd-expose-metrics": true };
        c.k3s.exceptions = [{ setting: "etcd-expose-metrics=true", reason: "scraped by the in-cluster Prometheus through the node firewall" }];
      }),
    ),
    expect: /exception for etcd-expose-metrics=true at k3s-platform:k3s\.extraServerConfig\["etcd-expose-metrics"\].*reason: scraped by the in-cluster Prometheus/,
  },
  {
    // A pass-through that slipped past validation (config edited after it) is caught from the final flags.
    policy: "node-final-flags-cis",
    pass: nodeResource(sampleConfig("prod"), 3),
    fail: nodeResource(prodWith((c) => (c.k3s.extraAgentConfig = { "kubelet-arg": ["anonymous-auth=true", "read-only-port=10255"] })), 3),
    expect: /prod-agent-1: kubelet-arg: kubelet anonymous-auth=true/,
  },
  {
    policy: "node-final-flags-safe",
    pass: nodeResource(sampleConfig("prod"), 0),
    fail: nodeResource(prodWith((c) => (c.k3s.extraServerConfig = { "cluster-reset": true, "etcd-s3-secret-key": "s3cr3t" })), 0),
    expect: /etcd-s3-secret-key is a credential in config\.yaml/,
  },
  {
    policy: "tenant-not-reserved-namespace",
    pass: k8s(TYPES.namespace, "payments", undefined, {}, { "k3s-platform.io/tenant": "true" }),
    fail: k8s(TYPES.namespace, "cis-operator-system", undefined, {}, { "k3s-platform.io/tenant": "true" }),
    expect: /cis-operator-system is reserved or exempt from Pod Security/,
  },
  {
    policy: "well-formed-taints",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.nodes[3]!.taints = ["gpu:Sometimes"]))),
    expect: /malformed taint "gpu:Sometimes"/,
  },
  {
    policy: "disjoint-networks",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.nodes[4]!.nodeIp = ["10.43.7.7"]))),
    expect: /prod-agent-2 address 10\.43\.7\.7 is inside 10\.43\.0\.0\/16/,
  },
  {
    policy: "cluster-dns-in-service-cidr",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.clusterDns = ["10.42.0.10"]))),
    expect: /outside serviceCidr/,
  },
  {
    // Issue 27: flannel-backend none without a CNI choice rendered without disable-network-policy.
    policy: "network-settings-workable",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.flannelBackend = "none"))),
    expect: /k3s\.flannelBackend: none turns flannel off/,
  },
  {
    policy: "network-settings-workable",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.dns.upstreams = ["127.0.0.53"]))),
    expect: /dns\.upstreams\.0: 127\.0\.0\.53 is a loopback address/,
  },
  {
    // Review of issue 27: a /32 IPv6 pod range with /64 node blocks stops kube-controller-manager.
    policy: "network-settings-workable",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.k3s.clusterCidr = ["10.42.0.0/24"]))),
    expect: /k3s\.clusterCidr: 10\.42\.0\.0\/24 holds 1 node block\(s\) of \/24, but the stack has \d+ nodes/,
  },
  {
    policy: "upgrade-drain-honours-disruption-budgets",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.upgrade.drain.disableEviction = true))),
    expect: /PodDisruptionBudgets are bypassed/,
  },
  {
    policy: "upgrade-keeps-agent-capacity",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.upgrade.maxUnavailable = "100%"))),
    expect: /drains all \d+ agents at once/,
  },
  {
    policy: "ssh-host-keys-pinned",
    pass: { type: TYPES.command, name: "n-apply", props: { connection: connection("ssh-ed25519 AAAA", { host: "bastion", hostKey: "ssh-ed25519 BBBB" }) } },
    fail: { type: TYPES.copy, name: "n-file", props: { connection: connection("ssh-ed25519 AAAA", { host: "bastion" }) } },
    expect: /no hostKey for bastion/,
  },
  {
    policy: "secret-commands-not-logged",
    pass: { type: TYPES.command, name: "n-secrets", parent: urnOf("test", TYPES.node, "n"), props: { logging: "none" }, additionalSecretOutputs: ["stdout", "stderr", "stdin"] },
    fail: { type: TYPES.command, name: "prod-kubeconfig", parent: urnOf("test", TYPES.cluster, "prod"), props: { logging: "stdoutAndStderr" }, additionalSecretOutputs: ["stdout"] },
    expect: /logging must be "none"|stderr not in additionalSecretOutputs/,
  },
  {
    policy: "no-plaintext-secrets",
    pass: { type: TYPES.copy, name: "n-bundle", props: { source: new pulumi.asset.StringAsset(renderBundle("n", [{ name: "config.yaml", mode: "0600", content: "node-name: a\ntls-san:\n  - x\n" }])) } },
    fail: { type: TYPES.copy, name: "n-bundle", props: { source: new pulumi.asset.StringAsset(renderBundle("n", [{ name: "config.yaml", mode: "0600", content: "node-name: a\ntoken: K10abc::server:xyz\n" }])) } },
    expect: /source contains a K3s token/,
  },
  {
    policy: "encryption-identity-not-first",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.encryption.custom!.resources[1]!.providers = ["identity", "secretbox"]))),
    expect: /identity first leaves secrets unencrypted/,
  },
  {
    policy: "encryption-aesgcm-rotation",
    pass: clusterResource(sampleConfig("prod")),
    fail: clusterResource(prodWith((c) => (c.encryption.custom!.resources[1]!.providers = ["aesgcm", "identity"]))),
    expect: /aesgcm is in use/,
  },
  {
    policy: "quota-bounds-cpu-memory",
    pass: k8s(TYPES.resourceQuota, "quota", "a", { spec: { hard: { "requests.cpu": "1", "limits.memory": "1Gi" } } }),
    fail: k8s(TYPES.resourceQuota, "quota", "a", { spec: { hard: { pods: "10", "requests.cpu": "1" } } }),
    expect: /a\/quota: no memory bound/,
  },
  {
    policy: "no-coredns-configmap-edits",
    pass: k8s(TYPES.configMap, "coredns-custom", "kube-system", { data: {} }),
    fail: k8s(TYPES.configMap, "coredns", "kube-system", { data: {} }),
    expect: /managed by K3s/,
  },
  {
    policy: "netpol-select-namespaces-by-metadata-name",
    pass: k8s(TYPES.networkPolicy, "allow-x", "a", { spec: { ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "b" } } }] }] } }),
    fail: k8s(TYPES.networkPolicy, "allow-x", "a", { spec: { ingress: [{ from: [{ namespaceSelector: { matchLabels: { name: "b" } } }] }] } }),
    expect: /namespaceSelector uses name/,
  },
  {
    policy: "tenant-pod-security",
    pass: k8s(TYPES.namespace, "a", undefined, {}, { "k3s-platform.io/tenant": "true", "pod-security.kubernetes.io/enforce": "restricted" }),
    fail: k8s(TYPES.namespace, "a", undefined, {}, { "k3s-platform.io/tenant": "true", "pod-security.kubernetes.io/enforce": "baseline" }),
    expect: /enforces baseline; at least restricted/,
    config: { minimumLevel: "restricted" },
  },
];

describe("policy pack", () => {
  it("has at least 20 policies, each named, described, with an enforcement level", () => {
    assert.ok(policies.length >= 20, `${policies.length} policies`);
    assert.equal(new Set(policies.map((p) => p.name)).size, policies.length, "names are unique");
    for (const p of policies) {
      assert.match(p.name, /^[a-z0-9-]+$/);
      assert.ok(p.description && p.description.length > 20, p.name);
      assert.ok(p.enforcementLevel, p.name);
    }
  });

  it("knows the name of the node's secrets command", () => {
    // Parsed against the parent's name, never by suffix: a node named "x-secrets" is not a secrets command.
    assert.equal(nodeChildOf(`prod-n1-${NODE_CHILDREN.secrets}`, "prod-n1"), "secrets");
    assert.equal(nodeChildOf(`prod-x-${NODE_CHILDREN.secrets}-${NODE_CHILDREN.apply}`, "prod-x-secrets"), "apply");
    assert.equal(nodeChildOf(`prod-x-${NODE_CHILDREN.secrets}`, "prod-n1"), undefined);
    assert.equal(clusterChildOf("prod-kubeconfig-apply", "prod"), undefined);
  });

  it("every policy has a passing and a violating case below", () => {
    const covered = new Set([...resourceCases.map((c) => c.policy), ...stackPolicyNames]);
    assert.deepEqual(policies.map((p) => p.name).filter((n) => !covered.has(n)), []);
  });

  describe("props the way @pulumi/policy hands them (issue 16.1)", () => {
    it("the harness gives policies the policy SDK's proxies, where a nested Promise cannot be awaited", async () => {
      const props = await asPolicySdkProps({ source: new pulumi.asset.StringAsset("x: 1\n"), spec: { hard: { cpu: "1" } } });
      assert.equal((props as Record<string, unknown>)["__isSpecialProxy"], true, "props are not the SDK's proxy");
      // What crashed every preview in the real engine: `await` on the proxied `text` Promise.
      await assert.rejects(async () => await (props.source as { text: Promise<string> }).text, /incompatible receiver/);
    });

    it("no-plaintext-secrets reads a staged file's text through the proxy and still finds a token", async () => {
      const policy = byName("no-plaintext-secrets") as ResourceValidationPolicy;
      const bad = { type: TYPES.copy, name: "n-file-config-yaml", props: { source: new pulumi.asset.StringAsset("token: K10abc::server:xyz\n") } };
      assert.match((await runResourcePolicy(policy, resourceArgs(bad))).join("\n"), /source contains a K3s token/);
    });
  });

  describe("resource policies", () => {
    for (const c of resourceCases) {
      it(`${c.policy}: passes the good case, reports the bad one`, async () => {
        const policy = byName(c.policy) as ResourceValidationPolicy;
        const config = c.config ?? policySettings(policy).config;
        assert.deepEqual(await runResourcePolicy(policy, resourceArgs(c.pass, config)), []);
        const messages = await runResourcePolicy(policy, resourceArgs(c.fail, config));
        assert.ok(messages.some((m) => c.expect.test(m)), `expected ${c.expect}, got ${JSON.stringify(messages)}`);
      });
    }

    it("prod-only policies do not apply to dev", async () => {
      const dev = structuredClone(sampleConfig("dev"));
      dev.k3s.hardening = "none";
      for (const name of ["prod-server-quorum", "prod-cis-hardening", "prod-secrets-encryption"]) {
        const policy = byName(name) as ResourceValidationPolicy;
        assert.deepEqual(await runResourcePolicy(policy, resourceArgs(clusterResource(dev), policySettings(policy).config)), []);
      }
    });
  });

  describe("stack policies", () => {
    let prodGraph: GraphResource[];
    before(async () => {
      prodGraph = await collectGraph(sampleConfig("prod"), "prod");
    });

    const run = (name: string, graph: GraphResource[]) => runStackPolicy(byName(name) as StackValidationPolicy, stackArgs(graph, policySettings(byName(name)).config));
    const without = (graph: GraphResource[], drop: (r: GraphResource) => boolean) => graph.filter((r) => !drop(r));
    const edit = (graph: GraphResource[], name: string, change: (r: GraphResource) => GraphResource) => graph.map((r) => (r.name === name ? change(structuredClone(r)) : r));

    it("tenant-namespace-guardrails: passes prod, reports a tenant without quota and default deny", async () => {
      assert.deepEqual(await run("tenant-namespace-guardrails", prodGraph), []);
      const broken = without(prodGraph, (r) => r.name === "prod-tenants-resourcequota-web-quota" || r.name === "prod-tenants-networkpolicy-web-default-deny");
      const messages = await run("tenant-namespace-guardrails", broken);
      assert.deepEqual(messages.sort(), ["namespace web: 0 ResourceQuotas (want exactly 1)", "namespace web: no default-deny NetworkPolicy"]);
    });

    it("servers-restart-one-at-a-time: passes prod, reports two servers applying in parallel", async () => {
      assert.deepEqual(await run("servers-restart-one-at-a-time", prodGraph), []);
      const parallel = edit(prodGraph, "prod-prod-server-3-apply", (r) => ({ ...r, dependencies: r.dependencies.filter((d) => !d.endsWith("prod-prod-server-2-apply")) }));
      const messages = await run("servers-restart-one-at-a-time", parallel);
      assert.ok(messages.some((m) => /prod-prod-server-(2|3)-apply and prod-prod-server-(2|3)-apply may restart servers at the same time/.test(m)), JSON.stringify(messages));
    });

    it("agents-join-after-servers: passes prod, reports an agent that does not wait", async () => {
      assert.deepEqual(await run("agents-join-after-servers", prodGraph), []);
      const early = edit(prodGraph, "prod-prod-agent-1-apply", (r) => ({ ...r, dependencies: r.dependencies.filter((d) => !d.endsWith("-server-3-apply") && !/-agent-batch-\d+-drain$/.test(d)) }));
      const messages = await run("agents-join-after-servers", early);
      assert.equal(messages.length, 1);
      assert.match(messages[0]!, /prod-prod-agent-1-apply does not wait for prod-prod-server-1-apply, prod-prod-server-2-apply, prod-prod-server-3-apply/);
    });

    it("loadbalancer-needs-pool: passes without pools, reports a LoadBalancer outside the pools", async () => {
      const lb = (labels: Record<string, string>): GraphResource => ({
        type: TYPES.service,
        name: "svc",
        urn: urnOf("prod", TYPES.service, "svc"),
        props: { metadata: { name: "web", namespace: "web", labels }, spec: { type: "LoadBalancer" } },
        dependencies: [],
        additionalSecretOutputs: [],
      });
      assert.deepEqual(await run("loadbalancer-needs-pool", [...prodGraph, lb({})]), [], "no pools configured: nothing to check");
      const pooled = edit(prodGraph, "prod", (r) => {
        (r.props.config as ResolvedConfig).k3s.serviceLb = { pools: { edge: ["prod-agent-1"] } };
        return r;
      });
      assert.deepEqual(await run("loadbalancer-needs-pool", [...pooled, lb({ "svccontroller.k3s.cattle.io/lbpool": "edge" })]), []);
      const messages = await run("loadbalancer-needs-pool", [...pooled, lb({})]);
      assert.deepEqual(messages, ["Service web/web: LoadBalancer without a configured pool (edge)"]);
    });
  });

  describe("upgrade-path-allowed: the pack reads the upgrade rules table (components/upgrade/paths.ts) against the release the last up deployed (issue 24)", () => {
    /**
     * The K3sCluster as the engine hands it to a stack policy (its outputs): `config`, and
     * `deployed.k3sVersion`, the last up's stack output read through the `<stack>-deployed`
     * StackReference (components/cluster/component.ts; the engine test sees it for real).
     */
    const withDeployed = (graph: GraphResource[], k3sVersion: string | undefined, edit?: (c: ResolvedConfig) => void): GraphResource[] =>
      graph.map((r) => {
        if (r.type !== TYPES.cluster) return r;
        const c = structuredClone(r.props.config as ResolvedConfig);
        edit?.(c);
        return { ...r, props: { ...r.props, config: c, deployed: { k3sVersion } } };
      });
    const to = (version: string) => (c: ResolvedConfig) => (c.k3s.version = version);
    const run = async (graph: GraphResource[]) => runStackPolicy(byName("upgrade-path-allowed") as StackValidationPolicy, stackArgs(graph));
    let prodGraph: GraphResource[];
    before(async () => {
      prodGraph = await collectGraph(sampleConfig("prod"), "prod");
    });

    it("the cluster registers the StackReference to its own stack, as its child", () => {
      const ref = prodGraph.filter((r) => r.type === TYPES.stackReference);
      assert.equal(ref.length, 1);
      assert.equal(ref[0]!.name, "prod-deployed");
      assert.equal(ref[0]!.parent, urnOf("prod", TYPES.cluster, "prod"));
      assert.match(String(ref[0]!.props.name), /\/k3s-platform\/prod$/);
    });

    it("passes a new stack, an unchanged release, a patch and a one-minor step", async () => {
      const current = sampleConfig("prod").k3s.version!;
      assert.deepEqual(await run(withDeployed(prodGraph, undefined)), [], "a new stack has no outputs yet");
      assert.deepEqual(await run(withDeployed(prodGraph, current)), []);
      assert.deepEqual(await run(withDeployed(prodGraph, "v1.36.3+k3s1")), []);
      assert.deepEqual(await run(withDeployed(prodGraph, "v1.37.0+k3s1")), []);
      assert.deepEqual(await run(withDeployed(prodGraph, "channel:stable")), [], "an unreadable channel record has no release to compare");
    });

    it("refuses a downgrade, a skipped minor and the etcd 3.6 step without v1.33.7+k3s3 (etcd 3.5.26: k3s-io/k3s#13493), naming both releases", async () => {
      const down = await run(withDeployed(prodGraph, "v1.37.1+k3s2"));
      assert.equal(down.length, 1);
      assert.match(down[0]!, /the last up deployed v1\.37\.1\+k3s2; .*is a downgrade/);
      assert.match((await run(withDeployed(prodGraph, "v1.35.6+k3s1")))[0]!, /skips 1 minor version\(s\); upgrade to v1\.36 first/);
      const etcd = await run(withDeployed(prodGraph, "v1.33.6+k3s1", to("v1.34.9+k3s1")));
      assert.match(etcd[0]!, /upgrade to v1\.33\.7\+k3s3 \(or a later v1\.33 release\) first: etcd 3\.5\.26 is needed before etcd 3\.6/);
      assert.deepEqual(await run(withDeployed(prodGraph, "v1.33.7+k3s3", to("v1.34.9+k3s1"))), []);
      // The etcd rule is for embedded-etcd members only (paths.ts), as on the hosts.
      const external = (c: ResolvedConfig) => {
        c.k3s.version = "v1.34.9+k3s1";
        c.k3s.datastore = { ...c.k3s.datastore, type: "external" } as ResolvedConfig["k3s"]["datastore"];
      };
      assert.deepEqual(await run(withDeployed(prodGraph, "v1.33.6+k3s1", external)), []);
    });

    it("fails the prod pack (mandatory) on a refused path, and nothing else does", async () => {
      const violations = await evaluatePack(withDeployed(await collectGraph(sampleConfig("prod"), "prod"), "v1.35.6+k3s1"), "prod");
      assert.deepEqual(violations.filter((v) => v.level === "mandatory").map((v) => v.policy), ["upgrade-path-allowed"]);
    });
  });

  describe("the whole pack on the sample stacks", () => {
    it("prod sample: zero mandatory violations under the prod policy config", async () => {
      const violations = await evaluatePack(await collectGraph(sampleConfig("prod"), "prod"), "prod");
      const mandatory = violations.filter((v) => v.level === "mandatory");
      assert.deepEqual(mandatory, []);
    });

    it("dev sample: everything advisory under the dev policy config, and the unpinned host keys are reported", async () => {
      const violations = await evaluatePack(await collectGraph(sampleConfig("dev"), "dev"), "dev");
      assert.ok(violations.length > 0);
      assert.ok(violations.every((v) => v.level === "advisory"));
      assert.ok(violations.some((v) => v.policy === "ssh-host-keys-pinned"));
    });

    it("final flags: a CIS-weakening pass-through that skipped validation fails the pack, on that node only", async () => {
      const config = prodWith((c) => (c.k3s.extraAgentConfig = { "kubelet-arg": ["read-only-port=10255"] }));
      const violations = await evaluatePack(await collectGraph(config, "prod"), "prod");
      const cis = violations.filter((v) => v.policy === "node-final-flags-cis");
      assert.equal(cis.length, 3, JSON.stringify(cis));
      assert.ok(cis.every((v) => v.level === "mandatory" && /prod-agent-\d: kubelet-arg: kubelet read-only-port=10255/.test(v.message)));
    });

    it("a broken prod variant fails with the expected mandatory violations, named", async () => {
      const broken = loadStackConfig(
        variant("prod", (r) => {
          r.nodes[2]!.role = "agent"; // two servers
          r.k3s!.hardening = "none";
          r.upgrade = { drain: { disableEviction: true } };
          r.encryption = { enabled: true, provider: "aescbc" };
          r.tenants![1]!.podSecurity = "baseline";
        }),
      );
      // Validation requires host keys in prod; the policy must still catch a program that skipped it.
      delete broken.nodes[4]!.ssh.hostKey;
      const violations = await evaluatePack(await collectGraph(broken, "prod"), "prod");
      const mandatory = new Set(violations.filter((v) => v.level === "mandatory").map((v) => v.policy));
      assert.deepEqual([...mandatory].sort(), [
        "prod-cis-hardening",
        "prod-secrets-encryption",
        "prod-server-quorum",
        "ssh-host-keys-pinned",
        "tenant-pod-security",
        "upgrade-drain-honours-disruption-budgets",
      ]);
      const hostKey = violations.filter((v) => v.policy === "ssh-host-keys-pinned");
      assert.ok(hostKey.every((v) => /prod-prod-agent-2-/.test(v.message)), "only the edited node's resources");
    });
  });
});

const stackPolicyNames = ["tenant-namespace-guardrails", "servers-restart-one-at-a-time", "agents-join-after-servers", "loadbalancer-needs-pool", "upgrade-path-allowed"];
