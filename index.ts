import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "./components/cluster/component";
import { readProgramConfig } from "./components/config/pulumi-config";

// Validation runs first and throws on bad input: no resource is registered, no host touched.
const program = readProgramConfig();
const { config } = program;

const cluster = new K3sCluster(pulumi.getStack(), {
  config,
  sshPrivateKey: program.sshPrivateKey,
  token: program.token,
  agentToken: program.agentToken,
  datastoreEndpoint: program.datastoreEndpoint,
  registryAuth: program.registryAuth,
});

export const environment = config.environment;
export const apiEndpoint = cluster.apiEndpoint;
export const kubeconfig = cluster.kubeconfig;
export const nodes = cluster.plan.nodes.map((n) => ({ name: n.node.name, role: n.role, host: n.node.host }));
