import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import { encryptionKeys, SecretsEncryption } from "../encryption/component";
import type { EncryptionKeys, NodeSecrets, RegistryAuth } from "../config/secrets";
import { EncryptionStatus } from "../encryption/render";
import { batchBoundSeconds, customTimeouts, stepBounds } from "../k3s/timeouts";
import { agentBatchStepName, childName, CLUSTER_CHILDREN, nodeResourceName, TYPES } from "../names";
import { K3sNode } from "../node/component";
import { rewriteKubeconfig } from "../node/kubeconfig";
import { sha256 } from "../plan/hash";
import { ClusterPlan, planCluster } from "../plan/node";
import type { Connection } from "../ssh/connection";
import { NO_OP_UPDATE } from "../encryption/once";
import { stdinScriptCommand } from "../shell/root";
import { AgentBatch, agentBatchesEnabled, renderAgentBatchDrain, renderAgentBatchUncordon, upgradeBatches } from "../upgrade/render";
import { joinShell, sh } from "../shell/sh";
import { createTeardowns } from "../decommission/component";
import { renderInventoryScript } from "../decommission/render";
import { forgetSteps, rebuildTriggers } from "../decommission/rebuild";
import { createBaseline, createCertificateChecks, createCertificateRotation, createTokenRotation, RotationNode } from "../rotation/component";
import { CertificateExpiry } from "../rotation/render";

export interface K3sClusterArgs {
  config: ResolvedConfig;
  /** SSH private key (a secret); without it the SSH agent (SSH_AUTH_SOCK) is used. */
  sshPrivateKey?: pulumi.Input<string>;
  /** Cluster token; generated (and kept as a secret in state) when not given. */
  token?: pulumi.Input<string>;
  agentToken?: pulumi.Input<string>;
  datastoreEndpoint?: pulumi.Input<string>;
  registryAuth?: pulumi.Input<RegistryAuth>;
  /** S3 credentials for etcd snapshots (k3s.etcdSnapshots.s3), into the servers' secrets drop-in. */
  etcdS3AccessKey?: pulumi.Input<string>;
  etcdS3SecretKey?: pulumi.Input<string>;
  /** Keys for custom-mode secrets encryption; generated per provider when absent. */
  encryptionKeys?: pulumi.Input<EncryptionKeys>;
}

export function nodeConnection(
  config: ResolvedConfig,
  node: NodeConfig,
  privateKey?: pulumi.Input<string>,
): Connection {
  const { ssh } = config;
  return {
    host: node.host,
    port: node.ssh.port ?? ssh.port,
    user: node.ssh.user ?? ssh.user,
    privateKey: privateKey ? pulumi.secret(privateKey) : undefined,
    hostKey: node.ssh.hostKey,
    dialErrorLimit: ssh.dialErrorLimit,
    perDialTimeout: ssh.perDialTimeout,
    proxy: ssh.bastion
      ? {
          host: ssh.bastion.host,
          port: ssh.bastion.port,
          user: ssh.bastion.user,
          hostKey: ssh.bastion.hostKey,
          privateKey: privateKey ? pulumi.secret(privateKey) : undefined,
          dialErrorLimit: ssh.dialErrorLimit,
          perDialTimeout: ssh.perDialTimeout,
        }
      : undefined,
  };
}

/** The kubectl commands that set labels K3s may not set at registration (node-role.kubernetes.io/*). */
export function postRegistrationLabelCommand(plan: ClusterPlan): string | undefined {
  const lines = plan.nodes
    .filter((n) => Object.keys(n.postRegistrationLabels).length > 0 || n.removedLabels.length > 0)
    .map((n) => {
      // `key-` removes a label (kubectl only warns when it is absent).
      const labels = [...Object.entries(n.postRegistrationLabels).map(([k, v]) => `${k}=${v}`), ...n.removedLabels.map((k) => `${k}-`)];
      return sh`k3s kubectl label node ${n.node.name} --overwrite ${labels}`;
    });
  if (lines.length === 0) return undefined;
  const user = plan.nodes[0].sshUser;
  const script = joinShell(lines, " && ");
  return user === "root" ? script.text : sh`sudo -n sh -c ${script.text}`.text;
}

/**
 * Agents are declared in batches of this many, yielding to the event loop between batches, so
 * registrations of earlier nodes complete while later ones are declared: declaring all of a large
 * cluster in one synchronous loop keeps every pending registration (and the stack the Pulumi SDK
 * records for each of its promises) alive at once, and the garbage collector's work then grows
 * faster than the node count (`npm run bench`: peak RSS 2.1 GB → 0.75 GB at 1,000 nodes).
 * Clusters with up to this many agents are declared synchronously, as before.
 */
export const AGENT_BATCH = 50;

/**
 * A K3s cluster on existing hosts: the first server initialises it, the other servers join one
 * at a time, agents join in parallel once every server is up. Exposes the admin kubeconfig.
 */
export class K3sCluster extends pulumi.ComponentResource {
  /** Every node's component, servers first; resolves once all are declared (see AGENT_BATCH). */
  readonly nodes: Promise<K3sNode[]>;
  readonly kubeconfig: pulumi.Output<string>;
  readonly apiEndpoint: string;
  readonly plan: ClusterPlan;
  /** The apply steps of every node (and the role labels); Kubernetes objects wait for these. */
  readonly ready: Promise<pulumi.Resource[]>;
  /** The URNs of `ready`: resolves once the engine has seen every node (tests and the bench wait on it). */
  readonly registered: pulumi.Output<string[]>;
  /** `k3s secrets-encrypt status` (or the custom config check) after bootstrap; undefined when off. */
  readonly encryptionStatus?: pulumi.Output<EncryptionStatus>;
  /** `k3s certificate check` per server: every certificate and the one that expires first. */
  readonly certificateExpiry: pulumi.Output<Record<string, CertificateExpiry>>;

  constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    // Only the validated, secret-free config is registered as inputs: policies read it.
    super(TYPES.cluster, name, { config: args.config }, opts);
    const built = createCluster(this, name, args);
    this.nodes = built.nodes;
    this.kubeconfig = built.kubeconfig;
    this.apiEndpoint = built.plan.topology.apiEndpoint;
    this.plan = built.plan;
    this.ready = built.ready;
    this.registered = pulumi.output(built.ready).apply((all) => pulumi.all(all.map((r) => r.urn)));
    this.encryptionStatus = built.encryptionStatus;
    this.certificateExpiry = built.certificateExpiry;
    // `nodes` keeps the program running until every batch is declared; a failure there fails it.
    this.registerOutputs({
      kubeconfig: this.kubeconfig,
      apiEndpoint: this.apiEndpoint,
      encryptionStatus: this.encryptionStatus,
      certificateExpiry: this.certificateExpiry,
      nodes: this.nodes.then((n) => n.length),
    });
  }
}

function createCluster(parent: K3sCluster, name: string, args: K3sClusterArgs) {
  const { config } = args;
  const plan = planCluster(config, { hasRegistryAuth: args.registryAuth !== undefined });

  const token =
    args.token ??
    new random.RandomPassword(childName(name, CLUSTER_CHILDREN.token), { length: 48, special: false }, { parent }).result;
  const keys = encryptionKeys(name, config, args.encryptionKeys, parent);
  const secrets: pulumi.Output<NodeSecrets> = pulumi.secret(
    pulumi.output({
      token,
      agentToken: args.agentToken,
      datastoreEndpoint: args.datastoreEndpoint,
      etcdS3AccessKey: args.etcdS3AccessKey,
      etcdS3SecretKey: args.etcdS3SecretKey,
      registryAuth: args.registryAuth,
      encryptionKeys: keys,
    }),
  ) as pulumi.Output<NodeSecrets>;

  // A new token is rotated on the first server before any drop-in holds it (rotation/render.ts).
  const firstPlan = plan.nodes[0]!;
  const firstRotation: RotationNode = { plan: firstPlan, connection: nodeConnection(config, firstPlan.node, args.sshPrivateKey) };
  const tokenRotation = createTokenRotation(name, config, firstRotation, token, parent);
  // One-shot steps do nothing on the up that creates the cluster (encryption/once.ts): the
  // baseline is taken on the first server before its first install, once per stack.
  const { step: baselineStep, baseline } = createBaseline(name, config, firstRotation, parent);

  const declared: K3sNode[] = [];
  const serverApplies: pulumi.Resource[] = [];
  const firstConnection = nodeConnection(config, plan.topology.firstServer, args.sshPrivateKey);
  // Rebuild (decommission/rebuild.ts): a one-shot "forget" step on a surviving server before the
  // node's steps; one on the first server waits for that server's apply.
  const forgets = new Map(forgetSteps(config).map((f) => [f.node.name, f]));
  const forgetStdin = baseline.apply((b) => new Map(forgetSteps(config, b).map((f) => [f.node.name, f.stdin])));
  const forget = (nodePlan: ClusterPlan["nodes"][number]): pulumi.Resource[] => {
    const f = forgets.get(nodePlan.node.name);
    if (!f) return [];
    const stdin = forgetStdin.apply((m) => m.get(f.node.name)!);
    return [
      new command.remote.Command(
        childName(name, f.name),
        { connection: nodeConnection(config, f.on, args.sshPrivateKey), create: f.create, update: f.update, stdin, triggers: f.triggers, addPreviousOutputInEnv: false },
        { parent, dependsOn: f.afterFirstServer ? serverApplies.slice(0, 1) : [], customTimeouts: customTimeouts(stepBounds().forget) },
      ),
    ];
  };
  const declare = (nodePlan: ClusterPlan["nodes"][number], after: pulumi.Resource[] = serverApplies.slice(-1)) => {
    // The plan lists servers first: each server waits for the one before it, and every agent
    // for the last server (through its batch's drain step), so servers join strictly one at a time.
    // The first server's steps wait for the baseline too: it must see the host before any install.
    const before = [...forget(nodePlan), ...(nodePlan === firstPlan ? [baselineStep] : [])];
    const node = new K3sNode(
      nodeResourceName(name, nodePlan.node.name),
      {
        plan: nodePlan,
        connection: nodeConnection(config, nodePlan.node, args.sshPrivateKey),
        secrets,
        after,
        secretsAfter: [tokenRotation],
        before,
      },
      { parent },
    );
    if (nodePlan.node.role === "server") serverApplies.push(node.apply);
    declared.push(node);
    return node;
  };
  const servers = plan.nodes.filter((n) => n.node.role === "server");
  const agents = plan.nodes.filter((n) => n.node.role !== "server");
  servers.forEach((s) => declare(s));
  // Agents: with a pinned version, in upgrade batches of at most upgrade.maxUnavailable
  // (components/upgrade): the first server cordons and drains a batch, its agents install in
  // parallel, the first server waits for them Ready at the new version and uncordons them, then
  // the next batch starts. Both batch steps run only when the version changes (their trigger);
  // any other input change runs NO_OP_UPDATE. Without a version, agents join in parallel.
  const agentPlans = new Map(agents.map((a) => [a.node.name, a]));
  const batches = agentBatchesEnabled(config) ? upgradeBatches(config) : [{ index: 0, agents: agents.map((a) => a.node.name) }];
  const batchSteps: pulumi.Resource[] = [];
  const firstUser = plan.nodes[0]!.sshUser;
  const batchStep = (batch: AgentBatch, step: "drain" | "uncordon", script: string, dependsOn: pulumi.Input<pulumi.Resource[]>) => {
    const r = new command.remote.Command(
      agentBatchStepName(name, batch.index, step),
      {
        connection: firstConnection,
        create: stdinScriptCommand(firstUser),
        update: NO_OP_UPDATE,
        stdin: script,
        triggers: [config.k3s.version ?? ""],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn, customTimeouts: customTimeouts(batchBoundSeconds(config, batch.agents.length, step)) },
    );
    batchSteps.push(r);
    return r;
  };
  const nodes = (async () => {
    let declaredAgents = 0;
    let previous: pulumi.Resource | undefined;
    for (const batch of batches) {
      // The drain waits for its agents' preflight steps (k3s/preflight.ts): an agent whose host
      // lacks what its install needs is never cordoned. They are declared with the agents, after
      // the drain, so the drain's dependency is settled once they exist.
      let settlePreflights: (r: pulumi.Resource[]) => void = () => {};
      const preflights = new Promise<pulumi.Resource[]>((resolve) => (settlePreflights = resolve));
      const prior = [...serverApplies.slice(-1), ...(previous ? [previous] : [])]; // now: `previous` moves on below
      const drain = batch.index > 0 ? batchStep(batch, "drain", renderAgentBatchDrain(config, batch), pulumi.output(preflights).apply((p) => [...prior, ...p])) : undefined;
      const applies: pulumi.Resource[] = [];
      const batchPreflights: pulumi.Resource[] = [];
      try {
        for (const agent of batch.agents) {
          // Declared in chunks of AGENT_BATCH, yielding between them (memory; see AGENT_BATCH).
          if (declaredAgents > 0 && declaredAgents % AGENT_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
          const node = declare(agentPlans.get(agent)!, drain ? [drain] : serverApplies.slice(-1));
          applies.push(node.apply);
          if (node.preflight) batchPreflights.push(node.preflight);
          declaredAgents++;
        }
      } finally {
        settlePreflights(batchPreflights);
      }
      if (batch.index > 0) previous = batchStep(batch, "uncordon", renderAgentBatchUncordon(config, batch), applies);
    }
    return declared;
  })();
  const applies = nodes.then((all) => all.map((n) => n.apply));
  // Every node's join: its apply, and the agent batches' uncordon steps (all declared by then).
  const joined: Promise<pulumi.Resource[]> = applies.then((all) => [...all, ...batchSteps]);

  const firstServer = declared[0]!;
  const labelCommand = postRegistrationLabelCommand(plan);
  // Kubernetes objects also wait for the agent batches' uncordon steps.
  let ready: Promise<pulumi.Resource[]> = joined;
  if (labelCommand) {
    const labels = new command.remote.Command(
      childName(name, CLUSTER_CHILDREN.nodeLabels),
      {
        connection: firstConnection,
        create: labelCommand,
        update: labelCommand,
        // A rebuilt node registers anew (its old Node was deleted): label it again. Only when set.
        triggers: [sha256(labelCommand), ...plan.nodes.flatMap((n) => rebuildTriggers(n.node).map((v) => `${n.node.name}=${v}`))],
      },
      { parent, dependsOn: applies },
    );
    ready = ready.then((all) => [...all, labels]);
  }

  let encryptionStatus: pulumi.Output<EncryptionStatus> | undefined;
  let encryption: SecretsEncryption | undefined;
  if (config.encryption.enabled) {
    const serverConnections = servers.map((n) => ({ name: n.node.name, user: n.sshUser, connection: nodeConnection(config, n.node, args.sshPrivateKey) }));
    // After every node joined, agents included: its rotation restarts servers (issue 21).
    encryption = new SecretsEncryption(
      childName(name, CLUSTER_CHILDREN.encryption),
      { config, plan, servers: serverConnections, after: joined, keys, baseline },
      { parent },
    );
    encryptionStatus = encryption.status;
  }

  // Certificates: the rotation (one-shot, servers one at a time, then agents; after every node
  // joined, and after the encryption steps, so their restarts never overlap), then the expiry
  // check per server.
  const rotationNodes: RotationNode[] = plan.nodes.map((n) => ({ plan: n, connection: nodeConnection(config, n.node, args.sshPrivateKey) }));
  const done = encryption?.done;
  const rotationAfter = joined.then((all) => [...all, ...(done ? [done] : [])]);
  const rotated = createCertificateRotation(name, config, rotationNodes, rotationAfter, parent, baseline);
  const certificateExpiry = createCertificateChecks(name, config, rotationNodes.filter((n) => n.plan.node.role === "server"), rotated, parent);
  const rotation = config.certificates?.rotation;
  const kubeconfigAfter: pulumi.Input<pulumi.Resource[]> = rotation === undefined ? [firstServer.apply] : rotated.then((r) => [firstServer.apply, ...r]);

  const fetched = new command.remote.Command(
    childName(name, CLUSTER_CHILDREN.kubeconfig),
    {
      connection: firstConnection,
      create: plan.kubeconfigCommand,
      // Re-read whenever the first server was re-applied (its certificates may have rotated).
      // A rebuilt first server may have started a new cluster (the only server): re-read then too.
      triggers: [plan.nodes[0].hashes.apply, ...(rotation === undefined ? [] : [String(rotation)]), ...rebuildTriggers(plan.nodes[0].node)],
      logging: command.types.enums.remote.Logging.None,
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: kubeconfigAfter, additionalSecretOutputs: ["stdout", "stderr"] },
  );
  const kubeconfig = pulumi.secret(
    fetched.stdout.apply((raw) => rewriteKubeconfig(raw, plan.topology.apiEndpoint, name)),
  );

  // Removal (decommission/render.ts): armed teardowns, and a warning for nodes removed without one.
  createTeardowns(name, config, (n) => nodeConnection(config, n, args.sshPrivateKey), parent);
  const inventory = renderInventoryScript(config);
  new command.remote.Command(
    childName(name, CLUSTER_CHILDREN.nodeInventory),
    {
      connection: firstConnection,
      create: stdinScriptCommand(firstPlan.sshUser),
      update: stdinScriptCommand(firstPlan.sshUser),
      stdin: inventory,
      triggers: [sha256(inventory)],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: applies },
  );
  return { plan, nodes, kubeconfig, ready, encryptionStatus, certificateExpiry };
}
