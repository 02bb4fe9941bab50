import { strict as assert } from "node:assert";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { AGENT_BATCH, K3sCluster } from "../../../components/cluster/component";
import { Environment } from "../../../components/config/schema";
import type { RegistryAuth } from "../../../components/config/secrets";
import { loadStackConfig } from "../../../components/stack/load";
import { NODE_CHILDREN } from "../../../components/names";
import { planCluster } from "../../../components/plan/node";
import { installMocks, Registered } from "../../helpers/pulumi-mocks";
import { buildClusterWithStdout, UNKNOWN } from "../../helpers/cluster-mocks";
import { ENVS, sampleConfig, variant } from "../../helpers/samples";
import { innerCommand } from "../../helpers/report";

const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n";
const TOKEN = "super-secret-cluster-token";

async function build(env: Environment, config = sampleConfig(env), withToken = true, registryAuth?: RegistryAuth) {
  const recorder = installMocks(env);
  const cluster = new K3sCluster(
    env,
    {
      config,
      sshPrivateKey: pulumi.secret(SSH_KEY),
      token: withToken ? pulumi.secret(TOKEN) : undefined,
      ...(registryAuth ? { registryAuth: pulumi.secret(registryAuth) } : {}),
    },
    { transformations: [recorder.transformation] },
  );
  await recorder.settle(cluster.kubeconfig, cluster.registered);
  return { cluster, registered: recorder.registered, kubeconfig: cluster.kubeconfig };
}

function byType(registered: Map<string, Registered>, type: string): Registered[] {
  return [...registered.values()].filter((r) => r.type === type);
}

function applyOf(registered: Map<string, Registered>, env: string, node: string): Registered {
  const r = registered.get(`${env}-${node}-apply`);
  assert.ok(r, `no apply step for ${node}`);
  return r;
}

describe("K3sCluster resource graph (Pulumi mocks)", () => {
  for (const env of ENVS) {
    describe(env, () => {
      let registered: Map<string, Registered>;
      let kubeconfig: pulumi.Output<string>;
      const config = sampleConfig(env);
      const servers = config.nodes.filter((n) => n.role === "server").map((n) => n.name);
      const agents = config.nodes.filter((n) => n.role === "agent").map((n) => n.name);

      before(async () => ({ registered, kubeconfig } = await build(env)));

      it("has one K3sNode per node with exactly stage, bundle, secrets, os-prep and apply (and preflight: agents in upgrade batches)", () => {
        assert.equal(byType(registered, "k3s-platform:index:K3sNode").length, config.nodes.length);
        for (const node of config.nodes) {
          const prefix = `${env}-${node.name}`;
          const children = [...registered.values()].filter((r) => r.parent === prefix).map((r) => r.name.slice(prefix.length + 1));
          // Every sample pins k3s.version: its agents upgrade in batches, whose drain waits for their preflight.
          const preflight = node.role === "agent" ? ["preflight"] : [];
          assert.deepEqual(children.sort(), ["apply", "bundle", "os-prep", ...preflight, "secrets", "stage"], node.name);
          assert.deepEqual(Object.values(NODE_CHILDREN).filter((c) => c !== "preflight" || preflight.length).sort(), children.sort());
        }
      });

      it("copies one bundle per node holding every staged file, its hash as trigger", async () => {
        for (const nodePlan of planCluster(config).nodes) {
          const copy = registered.get(`${env}-${nodePlan.node.name}-bundle`)!;
          assert.equal(copy.type, "command:remote:CopyToRemote");
          const text = await (copy.inputs.source as { text: Promise<string> }).text;
          assert.equal(text, nodePlan.bundle.content);
          assert.deepEqual(copy.inputs.triggers, [createHash("sha256").update(text).digest("hex")]);
          assert.equal(copy.inputs.remotePath, "/var/lib/k3s-platform/staging/bundle.sh");
          for (const f of nodePlan.files) assert.ok(text.includes(`unpack ${f.name} ${f.mode} `), `${nodePlan.node.name}: ${f.name}`);
          assert.deepEqual(copy.dependsOn, [`${env}-${nodePlan.node.name}-stage`]);
        }
      });

      it("orders servers one at a time, then every agent after the last server", () => {
        servers.forEach((name, i) => {
          const deps = applyOf(registered, env, name).dependsOn;
          const previousApplies = deps.filter((d) => d.endsWith("-apply"));
          assert.deepEqual(previousApplies, i === 0 ? [] : [`${env}-${servers[i - 1]}-apply`]);
        });
        // Agents wait for their upgrade batch's drain step, which waits for the last server (components/upgrade).
        for (const name of agents) {
          const deps = applyOf(registered, env, name).dependsOn.filter((d) => d.endsWith("-apply") || d.endsWith("-drain"));
          assert.equal(deps.length, 1, `${name}: ${deps.join(", ")}`);
          assert.match(deps[0]!, new RegExp(`^${env}-agent-batch-\\d+-drain$`));
          assert.ok(registered.get(deps[0]!)!.dependsOn.includes(`${env}-${servers[servers.length - 1]}-apply`), `${deps[0]} waits for the last server`);
        }
      });

      it("applies only after the node's bundle, secrets and OS prep", () => {
        const deps = applyOf(registered, env, config.nodes[0]!.name).dependsOn;
        for (const suffix of ["bundle", "secrets", "os-prep"]) {
          assert.ok(deps.includes(`${env}-${config.nodes[0]!.name}-${suffix}`), suffix);
        }
      });

      it("uses the plan's content hashes as triggers", () => {
        const plan = planCluster(config);
        for (const nodePlan of plan.nodes) {
          const apply = registered.get(`${env}-${nodePlan.node.name}-apply`)!;
          assert.equal((apply.inputs.triggers as string[])[0], nodePlan.hashes.apply);
          const prep = registered.get(`${env}-${nodePlan.node.name}-os-prep`)!;
          assert.deepEqual(prep.inputs.triggers, [nodePlan.hashes.osPrep]);
        }
      });

      it("keeps secrets secret: SSH key, secret files (not logged), kubeconfig", async () => {
        for (const cmd of byType(registered, "command:remote:Command")) {
          assert.ok(cmd.secretProps.has("connection.privateKey"), `${cmd.name}: SSH key must be a secret`);
        }
        const secretWrites = [...registered.values()].filter((r) => r.name.endsWith("-secrets") && r.type === "command:remote:Command");
        assert.equal(secretWrites.length, config.nodes.length, "one secrets command per node");
        const encodedToken = (doc: string) => doc.split("\n").map((l) => Buffer.from(l, "base64").toString("utf8")).join("\n");
        for (const w of secretWrites) {
          assert.ok(w.secretProps.has("stdin"), `${w.name}: stdin must be a secret`);
          assert.equal(w.inputs.logging, "none");
          assert.equal(w.inputs.addPreviousOutputInEnv, false);
          for (const out of ["stderr", "stdin", "stdout"]) assert.ok(w.additionalSecretOutputs.includes(out), `${w.name}: ${out} secret`);
          assert.match(encodedToken(String(w.inputs.stdin)), new RegExp(`token: ${TOKEN}`));
        }
        // The token reaches hosts through stdin only: no other input carries it, not even encoded.
        const b64 = Buffer.from(`token: ${TOKEN}`).toString("base64").slice(0, 24);
        // The token-rotate step carries the new token on stdin too (rotation/render.ts), secret.
        const rotate = registered.get(`${env}-token-rotate`)!;
        assert.ok(rotate.secretProps.has("stdin") && rotate.secretProps.has("triggers"), "token-rotate: stdin and trigger secret");
        for (const r of registered.values()) {
          if (secretWrites.includes(r) || r === rotate) continue;
          assert.ok(!JSON.stringify(r.inputs).includes(TOKEN), `${r.name} leaks the token`);
          assert.ok(!JSON.stringify(r.inputs).includes(b64), `${r.name} leaks the token (base64)`);
        }

        const fetch = registered.get(`${env}-kubeconfig`)!;
        assert.equal(fetch.inputs.logging, "none");
        assert.ok(fetch.additionalSecretOutputs.includes("stdout"));
        assert.equal(await pulumi.isSecret(kubeconfig), true);
        const text = await new Promise<string>((resolve) => kubeconfig.apply(resolve));
        assert.match(text, new RegExp(`server: https://${config.k3s.apiEndpoint ?? config.nodes[0]!.host}:6443`));
      });

      it("sets post-registration role labels from the first server after every node joined", () => {
        const wanted = config.nodes.some((n) => Object.keys(n.labels).some((k) => k.startsWith("node-role.kubernetes.io/")));
        const labels = registered.get(`${env}-node-labels`);
        assert.equal(labels !== undefined, wanted);
        if (labels) {
          assert.equal((labels.inputs.connection as { host: string }).host, config.nodes[0]!.host);
          assert.equal(labels.dependsOn.length, config.nodes.length);
          assert.match(String(labels.inputs.create), /kubectl label node/);
        }
      });
    });
  }

  it(`a cluster larger than one batch (${AGENT_BATCH} agents) registers every node in join order`, async () => {
    const agents = 2 * AGENT_BATCH + 7;
    const raw = variant("staging", (r) => {
      const template = r.nodes.find((n) => n.role === "agent")!;
      r.nodes = [...r.nodes.filter((n) => n.role === "server"), ...Array.from({ length: agents }, (_, i) => ({ ...structuredClone(template), name: `big-agent-${i}`, host: `198.18.1.${i + 1}` }))];
      delete r.k3s!.serviceLb; // its pools name the sample's agents, replaced here
      r.k3s!.nodeNetworks = ["198.51.100.0/24", "198.18.0.0/15"]; // the nodes' networks: NO_PROXY covers them (issue 26)
    });
    const config = loadStackConfig(raw);
    const { registered, cluster } = await build("staging", config);
    const server = config.nodes.find((n) => n.role === "server")!.name;
    assert.equal(byType(registered, "k3s-platform:index:K3sNode").length, agents + 1);
    for (let i = 0; i < agents; i++) {
      for (const child of Object.values(NODE_CHILDREN)) assert.ok(registered.has(`staging-big-agent-${i}-${child}`), `big-agent-${i}-${child}`);
      const batchAgents = Array.from({ length: agents }, (_, j) => j).filter((j) => Math.floor(j / 10) + 1 === Math.floor(i / 10) + 1).map((j) => `staging-big-agent-${j}-preflight`);
      // 10% of 107 agents: batches of 10, each drain after the previous batch's drain (components/upgrade;
      // the wait for that batch's uncordon is on the host, issue 26).
      const batch = Math.floor(i / 10) + 1;
      assert.deepEqual(applyOf(registered, "staging", `big-agent-${i}`).dependsOn.filter((d) => d.endsWith("-apply") || d.endsWith("-drain")), [`staging-agent-batch-${batch}-drain`]);
      const drainDeps = registered.get(`staging-agent-batch-${batch}-drain`)!.dependsOn;
      assert.deepEqual(drainDeps, [`staging-${server}-apply`, ...(batch === 1 ? [] : [`staging-agent-batch-${batch - 1}-drain`]), ...batchAgents]);
    }
    assert.equal((await cluster.nodes).length, agents + 1);
    assert.equal(registered.get("staging-node-labels")?.dependsOn.length ?? agents + 1, agents + 1, "role labels wait for every node");
  });

  it("rebuild: the value joins the triggers of every step of that node only; a forget step on a surviving server runs before them", async () => {
    const before = (await build("prod")).registered;
    assert.ok(![...before.keys()].some((n) => n.endsWith("-rebuild-forget")), "no forget step without rebuild");
    const edited = loadStackConfig(
      variant("prod", (r) => {
        r.nodes[0]!.rebuild = 1;
        r.nodes[3]!.rebuild = "2026-11-30";
      }),
    );
    const after = (await build("prod", edited)).registered;
    // Servers have no preflight step of their own (their apply.sh checks first).
    const steps = (node: string) => Object.values(NODE_CHILDREN).filter((c) => c !== "preflight" || node.includes("agent")).map((c) => `prod-${node}-${c}`);
    const changed = [...after.values()].filter((r) => JSON.stringify(r.inputs.triggers) !== JSON.stringify(before.get(r.name)?.inputs.triggers)).map((r) => r.name);
    assert.deepEqual(
      changed.sort(),
      [
        ...steps("prod-server-1"),
        ...steps("prod-agent-1"),
        "prod-prod-server-1-rebuild-forget",
        "prod-prod-agent-1-rebuild-forget",
        "prod-kubeconfig", // re-read from the rebuilt first server
        "prod-prod-server-1-certificate-check", // a rebuilt server has new certificates
        // The first server's apply.sh holds the join-only guard now (rejoin.ts): its hash moves,
        // and with it the encryption check that re-verifies after any server re-apply.
        "prod-encryption-verify",
        "prod-node-labels", // a rebuilt node registers anew: its post-registration labels again
        "prod-one-shot-baseline", // the first server is join-only now: the baseline is taken again (encryption/once.ts)
      ].sort(),
    );
    for (const [node, value] of [["prod-server-1", "1"], ["prod-agent-1", "2026-11-30"]] as const) {
      for (const name of steps(node)) {
        const old = (before.get(name)!.inputs.triggers as string[] | undefined) ?? [];
        const now = after.get(name)!.inputs.triggers as string[];
        if (node === "prod-agent-1") assert.deepEqual(now, [...old, value], name);
        else assert.deepEqual([now.length, now.at(-1)], [old.length + 1, value], name); // bundle and apply hashes moved (join-only)
      }
      const forget = after.get(`prod-${node}-rebuild-forget`)!;
      assert.deepEqual(forget.inputs.triggers, [value], "its only trigger: the value (one-shot)");
      assert.equal(innerCommand(forget.inputs.update as string), NO_OP_UPDATE, "any other change is the no-op update");
      assert.ok(String(forget.inputs.stdin).includes('delete_node "$NODE"'), "the forget script");
      for (const child of ["stage", "secrets"]) assert.ok(after.get(`prod-${node}-${child}`)!.dependsOn.includes(forget.name), `${node} ${child} waits for the forget`);
    }
    assert.deepEqual((after.get("prod-node-labels")!.inputs.triggers as string[]).slice(1), ["prod-server-1=1", "prod-agent-1=2026-11-30"]);
    // The first server is forgotten on the next server (no dependency: nothing else runs first);
    // any other node on the first server, after that server's apply.
    const host = (name: string) => (after.get(name)!.inputs.connection as { host: string }).host;
    assert.equal(host("prod-prod-server-1-rebuild-forget"), "203.0.113.12");
    assert.deepEqual(after.get("prod-prod-server-1-rebuild-forget")!.dependsOn, []);
    assert.equal(host("prod-prod-agent-1-rebuild-forget"), "203.0.113.11");
    assert.deepEqual(after.get("prod-prod-agent-1-rebuild-forget")!.dependsOn, ["prod-prod-server-1-apply"]);
  });

  it("pins host keys and routes through the bastion in prod", async () => {
    const { registered } = await build("prod");
    const apply = applyOf(registered, "prod", "prod-agent-1");
    const connection = apply.inputs.connection as { hostKey?: string; proxy?: { host: string; hostKey?: string } };
    assert.match(connection.hostKey ?? "", /^ssh-ed25519 /);
    assert.equal(connection.proxy?.host, "bastion.prod.example.com");
    assert.match(connection.proxy?.hostKey ?? "", /^ssh-ed25519 /);
  });

  it("generates the token as a secret when none is configured", async () => {
    const { registered } = await build("dev", sampleConfig("dev"), false);
    // The other RandomPassword is the token-rotate trigger's salt (rotation/component.ts).
    const password = byType(registered, "random:index/randomPassword:RandomPassword").filter((p) => !p.name.endsWith("-token-salt"));
    assert.equal(password.length, 1);
    const write = registered.get("dev-dev-server-1-secrets")!;
    assert.match(Buffer.from(String(write.inputs.stdin).split("\n")[0]!, "base64").toString("utf8"), /token: generated-token-value/);
    assert.ok(write.secretProps.has("stdin"));
  });

  it("a changed agent label changes that agent's apply and preflight triggers and its batch's drain and uncordon (a restart goes through them, issue 26), nothing else", async () => {
    const before = (await build("staging")).registered;
    const edited = loadStackConfig(variant("staging", (r) => (r.nodes[2]!.labels = { ...r.nodes[2]!.labels, "example.com/ssd": "true" })));
    const after = (await build("staging", edited)).registered;
    const changed = [...after.values()]
      .filter((r) => JSON.stringify(r.inputs.triggers) !== JSON.stringify(before.get(r.name)?.inputs.triggers))
      .map((r) => r.name);
    assert.deepEqual(changed.sort(), ["staging-agent-batch-2-drain", "staging-agent-batch-2-uncordon", "staging-stg-agent-2-apply", "staging-stg-agent-2-bundle", "staging-stg-agent-2-preflight"]);
  });

  it("one agent's change moves its own batch's drain and uncordon only, in a preview too: each drain reads its own agents' preflight answers (issue 26)", async () => {
    // Three batches of two; a label on stg-agent-3 (batch 2). In the preview its preflight is
    // replaced, so its answer (the preflight's stdout) is unknown; every other preflight keeps the
    // stdout of its last run. A drain that read every agent's answer showed every batch changing.
    const raw = (label?: string) =>
      variant("staging", (r) => {
        const template = r.nodes.find((n) => n.role === "agent")!;
        r.nodes.push(...[3, 4, 5, 6].map((i) => ({ ...structuredClone(template), name: `stg-agent-${i}`, host: `198.51.100.${30 + i}` })));
        r.upgrade = { ...r.upgrade, maxUnavailable: 2 };
        if (label) r.nodes.find((n) => n.name === "stg-agent-3")!.labels = { ...r.nodes.find((n) => n.name === "stg-agent-3")!.labels, "example.com/ssd": label };
      });
    const config = loadStackConfig(raw());
    const agents = config.nodes.filter((n) => n.role === "agent").map((n) => n.name);
    const answered = (verdict: (agent: string) => string) => Object.fromEntries(agents.map((a) => [`staging-${a}-preflight`, verdict(a)]));
    const said = (agent: string) => `preflight[${agent}]: host is ready\napply[${agent}]: dry run: restarts K3s: yes\n`;
    const before = (await buildClusterWithStdout(config, answered(said), {}, true)).registered;
    const after = (await buildClusterWithStdout(loadStackConfig(raw("true")), answered((a) => (a === "stg-agent-3" ? UNKNOWN : said(a))), {}, true)).registered;
    const batches = [...after.keys()].filter((n) => /-agent-batch-\d+-(drain|uncordon)$/.test(n)).sort();
    assert.equal(batches.length, 6, "three batches");
    const moved = (key: string) => batches.filter((n) => JSON.stringify(after.get(n)!.inputs[key]) !== JSON.stringify(before.get(n)!.inputs[key]));
    assert.deepEqual(moved("triggers"), ["staging-agent-batch-2-drain", "staging-agent-batch-2-uncordon"]);
    assert.deepEqual(moved("stdin"), ["staging-agent-batch-2-drain", "staging-agent-batch-2-uncordon"], "its restart digest; no other batch's script");
    assert.deepEqual(batches.filter((n) => pulumi.isUnknown(after.get(n)!.inputs.stdin)), ["staging-agent-batch-2-drain"], "only its batch's drain reads its answer: known once its preflight ran");
    // Each drain's script names its own agents' answers, and the answer it reads is that agent's.
    for (const [batch, pair] of [[1, ["stg-agent-1", "stg-agent-2"]], [3, ["stg-agent-5", "stg-agent-6"]]] as const) {
      assert.match(String(before.get(`staging-agent-batch-${batch}-drain`)!.inputs.stdin), /^RESTARTS=\(yes yes\)$/m, pair.join(", "));
    }
    const kept = (await buildClusterWithStdout(config, answered((a) => (a === "stg-agent-5" ? "apply[stg-agent-5]: dry run: restarts K3s: no\n" : said(a))))).registered;
    assert.match(String(kept.get("staging-agent-batch-3-drain")!.inputs.stdin), /^RESTARTS=\(no yes\)$/m, "stg-agent-5 said no");
    assert.equal(kept.get("staging-agent-batch-1-drain")!.inputs.stdin, before.get("staging-agent-batch-1-drain")!.inputs.stdin);
  });

  it("a registryAuth password change moves every agent's preflight and batch triggers, as readable keyed digests; the password is in no input but the secrets writes (issue 26)", async () => {
    const auth = (password: string): RegistryAuth => ({ "registry.example.com": { username: "ci", password } });
    const [one, two] = ["registry-password-one", "registry-password-two"];
    const before = (await build("staging", sampleConfig("staging"), true, auth(one))).registered;
    const after = (await build("staging", sampleConfig("staging"), true, auth(two))).registered;
    const changed = [...after.values()].filter((r) => JSON.stringify(r.inputs.triggers) !== JSON.stringify(before.get(r.name)?.inputs.triggers)).map((r) => r.name);
    const agents = sampleConfig("staging").nodes.filter((n) => n.role === "agent").map((n) => n.name);
    const servers = sampleConfig("staging").nodes.filter((n) => n.role === "server").map((n) => n.name);
    const batches = [...after.keys()].filter((n) => /-agent-batch-\d+-(drain|uncordon)$/.test(n));
    // Every node's apply (its secret file changed: apply.sh restarts it); the agents' preflights
    // and every batch (all agents read registries.yaml): their restarts are drained, batch by batch.
    assert.deepEqual(changed.sort(), [...batches, ...servers.map((n) => `staging-${n}-apply`), ...agents.flatMap((n) => [`staging-${n}-apply`, `staging-${n}-preflight`])].sort());
    for (const name of [...batches, ...agents.map((n) => `staging-${n}-preflight`)]) {
      const r = after.get(name)!;
      assert.ok(!r.secretProps.has("triggers") && !r.secretProps.has("stdin"), `${name}: readable in a preview`);
      assert.match(JSON.stringify(r.inputs.triggers), /[0-9a-f]{64}/);
    }
    for (const r of after.values()) {
      if (r.name.endsWith("-secrets")) {
        assert.ok(r.secretProps.has("stdin"), `${r.name}: the password travels on its secret stdin`);
        continue;
      }
      for (const password of [one, two]) assert.ok(!JSON.stringify(r.inputs).includes(password), `${r.name} leaks the registry password`);
    }
  });
});
