import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "./components/cluster/component";
import { readProgramConfig } from "./components/config/pulumi-config";
import { CoreDnsTuning } from "./components/dns/component";
import { renderDns } from "./components/dns/render";
import { TenantNamespaces } from "./components/tenants/component";

// Validation runs first and throws on bad input: no resource is registered, no host touched.
const program = readProgramConfig();
const { config } = program;
const stack = pulumi.getStack();

const cluster = new K3sCluster(stack, {
  config,
  sshPrivateKey: program.sshPrivateKey,
  token: program.token,
  agentToken: program.agentToken,
  datastoreEndpoint: program.datastoreEndpoint,
  registryAuth: program.registryAuth,
  encryptionKeys: program.encryptionKeys,
});

// The in-cluster layer talks to the API through the kubeconfig the cluster exported.
if (config.tenants.length > 0 || renderDns(config).length > 0) {
  const provider = new k8s.Provider(
    `${stack}-k8s`,
    { kubeconfig: cluster.kubeconfig, enableServerSideApply: true },
    { dependsOn: cluster.ready },
  );
  new TenantNamespaces(`${stack}-tenants`, { config, provider });
  new CoreDnsTuning(`${stack}-dns`, { config, provider });
}

export const environment = config.environment;
export const apiEndpoint = cluster.apiEndpoint;
export const kubeconfig = cluster.kubeconfig;
export const encryptionStatus = cluster.encryptionStatus;
export const nodes = cluster.plan.nodes.map((n) => ({ name: n.node.name, role: n.role, host: n.node.host }));
