import * as pulumi from "@pulumi/pulumi";
import { readProgramConfig } from "./components/stack/pulumi-config";
import { buildProgram } from "./components/program";

// Validation runs first and throws on bad input: no resource is registered, no host touched.
const outputs = buildProgram(readProgramConfig(), pulumi.getStack());

export const environment = outputs.environment;
export const apiEndpoint = outputs.apiEndpoint;
export const kubeconfig = outputs.kubeconfig;
export const encryptionStatus = outputs.encryptionStatus;
export const certificateExpiry = outputs.certificateExpiry;
export const nodes = outputs.nodes;
export const k3sVersion = outputs.k3sVersion;
export const clusterToken = outputs.clusterToken;
