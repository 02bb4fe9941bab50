import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "../components/cluster/component";
import { Environment } from "../components/config/schema";
import { loadStackConfig } from "../components/config/validate";
import { planCluster } from "../components/node/plan";
import { installMocks, Registered } from "./helpers/pulumi-mocks";
import { ENVS, sampleConfig, variant } from "./helpers/samples";

const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n";
const TOKEN = "super-secret-cluster-token";

async function build(env: Environment, config = sampleConfig(env), withToken = true) {
  const recorder = installMocks(env);
  const cluster = new K3sCluster(
    env,
    {
      config,
      sshPrivateKey: pulumi.secret(SSH_KEY),
      token: withToken ? pulumi.secret(TOKEN) : undefined,
    },
    { transformations: [recorder.transformation] },
  );
  await recorder.settle(cluster.kubeconfig);
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

      it("has one K3sNode per node with stage, file copies, secret write, os-prep and apply", () => {
        assert.equal(byType(registered, "k3s-platform:index:K3sNode").length, config.nodes.length);
        for (const node of config.nodes) {
          for (const suffix of ["stage", "file-config-yaml", "file-os-prep-sh", "file-apply-sh", "file-install-k3s-sh", "secret-secrets-dropin", "os-prep", "apply"]) {
            assert.ok(registered.has(`${env}-${node.name}-${suffix}`), `${node.name}-${suffix}`);
          }
        }
      });

      it("orders servers one at a time, then every agent after the last server", () => {
        servers.forEach((name, i) => {
          const deps = applyOf(registered, env, name).dependsOn;
          const previousApplies = deps.filter((d) => d.endsWith("-apply"));
          assert.deepEqual(previousApplies, i === 0 ? [] : [`${env}-${servers[i - 1]}-apply`]);
        });
        for (const name of agents) {
          const deps = applyOf(registered, env, name).dependsOn.filter((d) => d.endsWith("-apply"));
          assert.deepEqual(deps, [`${env}-${servers[servers.length - 1]}-apply`]);
        }
      });

      it("applies only after the node's files, secrets and OS prep", () => {
        const deps = applyOf(registered, env, config.nodes[0]!.name).dependsOn;
        for (const suffix of ["file-config-yaml", "file-apply-sh", "secret-secrets-dropin", "os-prep"]) {
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
        const secretWrites = [...registered.values()].filter((r) => r.name.includes("-secret-"));
        const expectedWrites = planCluster(config).nodes.reduce((n, p) => n + p.secretFiles.length, 0);
        assert.equal(secretWrites.length, expectedWrites);
        assert.ok(expectedWrites >= config.nodes.length);
        for (const w of secretWrites) {
          assert.ok(w.secretProps.has("stdin"), `${w.name}: stdin must be a secret`);
          assert.equal(w.inputs.logging, "none");
          for (const out of ["stderr", "stdin", "stdout"]) assert.ok(w.additionalSecretOutputs.includes(out), `${w.name}: ${out} secret`);
          if (w.name.endsWith("-secret-secrets-dropin")) assert.match(String(w.inputs.stdin), new RegExp(TOKEN));
        }
        // The token reaches hosts through stdin only: no other input carries it.
        for (const r of registered.values()) {
          if (r.name.includes("-secret-")) continue;
          assert.ok(!JSON.stringify(r.inputs).includes(TOKEN), `${r.name} leaks the token`);
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
    const password = byType(registered, "random:index/randomPassword:RandomPassword");
    assert.equal(password.length, 1);
    const write = registered.get("dev-dev-server-1-secret-secrets-dropin")!;
    assert.match(String(write.inputs.stdin), /generated-token-value/);
    assert.ok(write.secretProps.has("stdin"));
  });

  it("a changed agent label changes that agent's apply trigger and nothing else", async () => {
    const before = (await build("staging")).registered;
    const edited = loadStackConfig(variant("staging", (r) => (r.nodes[2]!.labels = { ...r.nodes[2]!.labels, "example.com/ssd": "true" })));
    const after = (await build("staging", edited)).registered;
    const changed = [...after.values()]
      .filter((r) => JSON.stringify(r.inputs.triggers) !== JSON.stringify(before.get(r.name)?.inputs.triggers))
      .map((r) => r.name);
    assert.deepEqual(changed.sort(), ["staging-stg-agent-2-apply", "staging-stg-agent-2-file-config-yaml"]);
  });
});
