import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "./cluster/component";
import { childName, CLUSTER_CHILDREN, TYPES } from "./names";
import { ProgramConfig } from "./stack/pulumi-config";
import { CoreDnsTuning } from "./dns/component";
import { renderDns } from "./dns/render";
import { ContainerRuntimes } from "./runtimes/component";
import { renderRuntimeClasses } from "./runtimes/render";
import { TenantNamespaces } from "./tenants/component";

/** Whether the stack is protected from `pulumi destroy` (k3s-platform:protect; default: prod). */
export function protectsStack(config: ProgramConfig["config"]): boolean {
  return config.protect ?? config.environment === "prod";
}

/**
 * A protected component that depends on every resource of the stack (a component in dependsOn
 * stands for all its custom children: @pulumi/pulumi runtime/dependsOn.ts). `pulumi destroy`
 * deletes it first (dependents go before their dependencies) and fails there, "cannot be deleted
 * because it is protected", and the engine skips everything it depends on (deployment_executor.go:
 * the transitive dependencies of an errored delete), so nothing is deleted, preview included.
 * Setting `protect: false` and running `up` records protect off; then destroy proceeds. Only this
 * one resource is protected: protecting the others would also refuse the replacements and deletes
 * day-2 operations make in an ordinary `up`.
 */
function destroyGuard(stack: string, cluster: K3sCluster, inCluster: pulumi.Resource[], protect: boolean, opts: pulumi.ComponentResourceOptions): void {
  const everything = cluster.nodes.then(() => [cluster, ...inCluster]);
  new pulumi.ComponentResource(TYPES.destroyGuard, childName(stack, CLUSTER_CHILDREN.destroyGuard), {}, { ...opts, protect, dependsOn: everything });
}

/** A channel stack's recorded release, or `channel:<name>` while it cannot be read. */
function k3sRelease(cluster: K3sCluster, channel: string): pulumi.Input<string> {
  const fallback = `channel:${channel}`;
  // With the channel-change warning (K3sCluster.channelChange): the export is awaited, so is it.
  return cluster.release ? pulumi.all([cluster.release, cluster.channelChange]).apply(([r]) => r ?? fallback) : fallback;
}

/**
 * The whole stack: the cluster over SSH, then the in-cluster layer through a provider built from
 * the cluster's kubeconfig. `opts` reaches every top-level component (tests pass transformations).
 */
export function buildProgram(program: ProgramConfig, stack: string, opts: pulumi.ComponentResourceOptions = {}) {
  const { config } = program;
  // ProgramConfig carries the cluster's arguments under the same names, secrets still secret.
  const cluster = new K3sCluster(stack, { ...program }, opts);

  const inCluster: pulumi.Resource[] = [];
  if (config.tenants.length > 0 || renderDns(config).length > 0 || renderRuntimeClasses(config).length > 0) {
    const provider = new k8s.Provider(
      `${stack}-k8s`,
      // Secret explicitly: the provider would otherwise keep the credentials in its plain inputs.
      { kubeconfig: pulumi.secret(cluster.kubeconfig), enableServerSideApply: true },
      { ...opts, dependsOn: cluster.ready },
    );
    inCluster.push(
      provider,
      new TenantNamespaces(`${stack}-tenants`, { config, provider }, opts),
      new CoreDnsTuning(`${stack}-dns`, { config, provider }, opts),
      new ContainerRuntimes(`${stack}-runtimes`, { config, provider }, opts),
    );
  }
  // Declared whenever protection was ever on (prod, or set): `protect: false` must reach the engine
  // in an `up` before the guard may go (Pulumi deletes no protected resource, its own guard included).
  if (config.protect !== undefined || config.environment === "prod") destroyGuard(stack, cluster, inCluster, protectsStack(config), opts);

  return {
    environment: config.environment,
    apiEndpoint: cluster.apiEndpoint,
    kubeconfig: cluster.kubeconfig,
    // Secrets encryption off: say so (an undefined output only draws an engine warning on every run).
    encryptionStatus: cluster.encryptionStatus ?? { enabled: false },
    /** Per server: every certificate `k3s certificate check` reports and the first to expire. */
    certificateExpiry: cluster.certificateExpiry,
    nodes: cluster.plan.nodes.map((n) => ({ name: n.node.name, role: n.role, host: n.node.host })),
    /**
     * The cluster's release: `k3s.version`, or on a channel stack the release the k3s-release step
     * recorded (issue 28), which every node runs; `channel:<name>` only while that record is
     * unreadable. The pack's upgrade-path check reads it at the next up (a move to k3s.version).
     */
    k3sVersion: config.k3s.version ?? k3sRelease(cluster, config.k3s.channel ?? ""),
    /** A secret: `pulumi stack output clusterToken --show-secrets` (docs/backup-and-restore.md: a restore needs it). */
    clusterToken: cluster.token,
    /** Not a stack output: resolves once every node is registered (K3sCluster.registered). */
    registered: cluster.registered,
  };
}
