import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { TYPES } from "../names";
import { ResolvedConfig } from "../config/schema";
import { applyObjects } from "../kube/apply";
import { renderRuntimeClasses } from "./render";

export interface ContainerRuntimesArgs {
  config: ResolvedConfig;
  provider: k8s.Provider;
}

/** The NVIDIA RuntimeClasses (when K3s' own runtimes add-on is disabled and a node has GPUs). */
export class ContainerRuntimes extends pulumi.ComponentResource {
  constructor(name: string, args: ContainerRuntimesArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.containerRuntimes, name, { gpuNodes: args.config.nodes.filter((n) => n.gpu).map((n) => n.name) }, opts);
    const objects = applyObjects(this, name, renderRuntimeClasses(args.config), args.provider);
    this.registerOutputs({ objects: objects.length });
  }
}
