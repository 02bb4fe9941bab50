import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import { encryptionKeys, SecretsEncryption } from "../encryption/component";
import type { EncryptionKeys, NodeSecrets, RegistryAuth } from "../config/secrets";
import { EncryptionStatus } from "../encryption/render";
import { channelChangeWarning, parseRelease } from "../k3s/release";
import { parseRestartVerdict } from "../k3s/agent-preflight";
import { parseBaseline } from "../operations/once";
import { parseAbandonedReset, parseRestoreCovered, parseRestoreResetDone } from "../backup/restore";
import { restoreStepNames } from "../operations/restore";
import { restoreAbandonedFirst } from "../operations/restore-abandoned";
import { MAINTENANCE_RECORD } from "../operations/maintenance";
import { parseCovered } from "../operations/covered";
import { childName, CLUSTER_CHILDREN, nodeLifecycleName, nodeResourceName, TYPES } from "../names";
import { K3sNode } from "../node/component";
import { rewriteKubeconfig } from "../node/kubeconfig";
import { ClusterPlan, planCluster } from "../plan/node";
import { agentSecretInputs } from "../plan/restart";
import type { Connection } from "../ssh/connection";
import { operationSteps } from "../operations";
import { ENCRYPTION_VERIFY } from "../operations/encryption";
import { joinedRefs } from "../operations/order";
import { runSteps } from "../operations/run";
import { preflightOf } from "../operations/step";
import { CertificateExpiry, parseCertificateCheck } from "../rotation/render";
import { postRegistrationLabelCommand } from "./labels";

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
  /** `restoreToken`: the token a snapshot to restore was taken with (operations/restore.ts); only the restore step reads it. */
  restoreToken?: pulumi.Input<string>;
  /** Tailscale auth key (k3s.vpn), into every node's secrets drop-in as vpn-auth. */
  vpnAuthKey?: pulumi.Input<string>;
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

export { postRegistrationLabelCommand };

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
 * at a time, agents that never joined install in one wave once every server is up (running
 * agents restart in their upgrade batches). Exposes the admin kubeconfig.
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
  /**
   * The cluster token (the configured or the generated one), a secret: restoring a snapshot needs
   * it. Not among the registered outputs, so the component's state is what it was.
   */
  readonly token: pulumi.Output<string>;
  /**
   * A channel stack's release (issue 28): what the `<stack>-k3s-release` step recorded (a K3s
   * release, `v1.MINOR.PATCH+k3sN`), undefined when its stdout is unreadable; absent on a pinned
   * stack. The `k3sVersion` stack output carries it, so the pack's upgrade-path check compares a
   * later move to `k3s.version` against the release the cluster really runs.
   */
  readonly release?: pulumi.Output<string | undefined>;
  /** On a channel stack: the warning logged when `k3s.channel` changed after the release was recorded (k3s/release.ts channelChangeWarning). */
  readonly channelChange?: pulumi.Output<string | undefined>;

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
    this.token = pulumi.secret(built.token);
    if (built.release) this.release = built.release;
    if (built.channelChange) this.channelChange = built.channelChange;
    // The release the last `up` deployed, for the policy pack (upgrade-path-allowed): a policy never
    // sees a resource's old inputs (@pulumi/policy's ResourceValidationArgs and the analyzer
    // protocol carry only the new ones), but a StackReference to this very stack reads its last
    // outputs (the engine reads it in preview and up; measured with the CLI v3.260.0 and a file
    // backend: each run sees the previous run's `k3sVersion`). Its outputs hold the stack's secret
    // outputs as secrets, ciphertext in state like the originals. Stack policies do not see the
    // reference itself (a read resource; measured: absent from AnalyzeStack's resources), so the
    // value is registered below as this component's output `deployed.k3sVersion`: an output, not
    // an input, so it changes no diff.
    const deployed = new pulumi.StackReference(childName(name, CLUSTER_CHILDREN.deployed), { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` }, { parent: this });
    // `config` again as an output: stack policies see a resource's outputs, not its inputs
    // (the engine's AnalyzeStack passes `v.Outputs`: pulumi/pulumi pkg/resource/deploy/step_generator.go
    // AnalyzeResources), so without it the stack policies reading the config saw nothing.
    // `nodes` keeps the program running until every batch is declared; a failure there fails it.
    this.registerOutputs({
      config: args.config,
      deployed: { k3sVersion: deployed.getOutput("k3sVersion") },
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
      vpnAuthKey: args.vpnAuthKey,
      registryAuth: args.registryAuth,
      encryptionKeys: keys,
    }),
  ) as pulumi.Output<NodeSecrets>;
  // The token-rotate trigger's salt (operations/token-rotation.ts): a secret, kept per stack.
  const salt = new random.RandomPassword(childName(name, CLUSTER_CHILDREN.tokenSalt), { length: 32, special: false }, { parent });
  // Each agent's keyed digest of its secret files (issue 26, plan/restart.ts secretInputsDigest),
  // keyed by that salt: its batch steps and its preflight compare it, so a changed registryAuth
  // password, vpnAuthKey or token drains the agents that read it before they restart. Unsecreted
  // on purpose: an HMAC under a key the reader does not hold reveals nothing of the secrets (not
  // even a guess can be checked), and a secret trigger or script would hide every change of them
  // from the preview (the other inputs stay readable; the digest is all a reviewer sees).
  // In the program, not on the host: the first server, where the batch steps run, never reads an
  // agent's secret files, and passing secrets to a script on stdin would put them on that host.
  const secretInputs = pulumi.unsecret(pulumi.all([secrets, salt.result]).apply(([s, key]) => agentSecretInputs(plan, s, key)));
  const encryption = config.encryption.enabled ? new SecretsEncryption(childName(name, CLUSTER_CHILDREN.encryption), { config }, { parent }) : undefined;

  // Every step of every operation the config arms, in run order (operations/index.ts), declared
  // in one loop (operations/run.ts): node steps become K3sNodes, the others remote commands.
  const declared: K3sNode[] = [];
  let firstNode: K3sNode | undefined;
  const plans = new Map(plan.nodes.map((n) => [n.node.name, n]));
  const steps = runSteps(operationSteps(config, plan), {
    cluster: name,
    parents: { cluster: parent, encryption },
    connectionOf: (node) => nodeConnection(config, node, args.sshPrivateKey),
    facts: {
      baseline: (get) => (get(CLUSTER_CHILDREN.oneShotBaseline) as command.remote.Command).stdout.apply(parseBaseline),
      token: () => token,
      tokenSalt: () => salt.result,
      encryptionKeys: () => keys,
      restoreToken: () => args.restoreToken ?? "",
      // Only whether it is set, unsecret: the restore's check (not secret in state) requires curl then.
      restoreTokenSet: () => pulumi.unsecret(pulumi.output(args.restoreToken ?? "").apply((t) => t !== "")),
      // The nodes the restore covered: its check's record, printed on every run (backup/restore.ts).
      restoreCovered: (get) => {
        const check = config.restore && (get(restoreStepNames(config)[0]!) as command.remote.Command | undefined);
        return check ? check.stdout.apply((out) => parseRestoreCovered(out, String(config.restore!.id))) : pulumi.output([]);
      },
      // Whether the restore's reset on the first server was done: the same record says so.
      restoreResetDone: (get) => {
        const check = config.restore && (get(restoreStepNames(config)[0]!) as command.remote.Command | undefined);
        return check ? check.stdout.apply((out) => parseRestoreResetDone(out, String(config.restore!.id))) : pulumi.output(false);
      },
      // Where an unfinished restore's reset ran: the first server's restore-abandoned step says so.
      restoreAbandonedReset: (get) => {
        const name = restoreAbandonedFirst(config);
        const step = name === undefined ? undefined : (get(name) as command.remote.Command | undefined);
        return step ? step.stdout.apply(parseAbandonedReset) : pulumi.output("");
      },
      maintenanceCovered: (get) => {
        const record = config.maintenance && (get(MAINTENANCE_RECORD) as command.remote.Command | undefined);
        return record ? record.stdout.apply((out) => parseCovered(out, "maintenance", String(config.maintenance!.id))) : pulumi.output([]);
      },
      // A channel stack's release (operations/release.ts): the agent batch steps' target there.
      clusterRelease: (get) => {
        const release = get(CLUSTER_CHILDREN.k3sRelease) as command.remote.Command | undefined;
        return release ? release.stdout.apply(parseRelease) : pulumi.output(undefined);
      },
      secretInputs: () => secretInputs,
      // Whether each of these agents' apply restarts K3s (issue 26): their preflights' answers,
      // declared after the batch's drain that reads them. Only these agents': one agent's change
      // (its preflight replaced, its answer unknown in a preview) moves its batch's drain alone.
      restartVerdicts: (agents, awaited) =>
        pulumi
          .output(awaited(agents.map(preflightOf)).then((found) => pulumi.all(found.map((r) => (r as command.remote.Command).stdout))))
          .apply((out) => Object.fromEntries(agents.map((agent, i) => [agent, parseRestartVerdict(out[i] ?? "")]))),
    },
    declareNode: (step, waits, get) => {
      const nodePlan = plans.get(step.name)!;
      // A channel stack's release (operations/release.ts), declared before every node step: each apply installs it.
      const releaseStep = get(CLUSTER_CHILDREN.k3sRelease) as command.remote.Command | undefined;
      // The first server's own steps go first in the engine's queue (issue 26): every other node's
      // steps wait for its OS preparation, so its apply (the cluster's creation, which every other
      // apply waits for) starts without queueing behind every node's stage, bundle and os-prep
      // (`pulumi up --parallel` runs 4 × CPUs steps at once by default). The others prepare while it
      // initialises the cluster. Run order declares the first server first.
      const before = firstNode ? [...waits.before, firstNode.osPrep] : waits.before;
      const node = new K3sNode(
        nodeResourceName(name, step.name),
        {
          plan: nodePlan,
          connection: nodeConnection(config, nodePlan.node, args.sshPrivateKey),
          secrets,
          ...(nodePlan.node.role === "agent" ? { secretInputs: secretInputs.apply((all) => all[nodePlan.node.name] ?? "") } : {}),
          ...waits,
          before,
          ...(releaseStep ? { release: releaseStep.stdout } : {}),
        },
        { parent },
      );
      if (nodePlan === plan.nodes[0]) firstNode = node;
      declared.push(node);
      return { apply: node.apply, ...(node.preflight ? { preflight: node.preflight } : {}) };
    },
    agentChunk: AGENT_BATCH,
  });
  const nodes = steps.declared.then(() => declared);
  // Kubernetes objects wait for every node's join (its apply, the agent batches) and the labels;
  // and for destroy-begin (uninstallOnDestroy), so a destroy deletes them while the API answers.
  const labels = steps.get(CLUSTER_CHILDREN.nodeLabels);
  const begin = steps.get(CLUSTER_CHILDREN.destroyBegin);
  const ready = steps.all(joinedRefs(config, plan)).then((all) => [...all, ...(labels ? [labels] : []), ...(begin ? [begin] : [])]);

  const verify = steps.get(ENCRYPTION_VERIFY) as command.remote.Command | undefined;
  const encryptionStatus = encryption && verify ? encryption.complete(verify) : undefined;
  const checks = plan.nodes
    .filter((n) => n.node.role === "server")
    .map((n) => (steps.get(nodeLifecycleName(n.node.name, "certificateCheck")) as command.remote.Command).stdout.apply((out) => [n.node.name, parseCertificateCheck(out)] as const));
  const certificateExpiry = pulumi.all(checks).apply((pairs) => Object.fromEntries(pairs));
  const releaseStep = steps.get(CLUSTER_CHILDREN.k3sRelease) as command.remote.Command | undefined;
  const release = releaseStep?.stdout.apply(parseRelease);
  // Pulumi keeps the step's first stdin (every input ignored): a changed channel is said, not silent.
  const channelChange = releaseStep?.stdin.apply((stdin) => {
    const warning = channelChangeWarning(config, stdin);
    if (warning) void pulumi.log.warn(warning, releaseStep);
    return warning;
  });
  const fetched = steps.get(CLUSTER_CHILDREN.kubeconfig) as command.remote.Command;
  const kubeconfig = pulumi.secret(fetched.stdout.apply((raw) => rewriteKubeconfig(raw, plan.topology.apiEndpoint, name)));
  return { plan, nodes, kubeconfig, ready, encryptionStatus, certificateExpiry, token, release, channelChange };
}
