import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { TYPES } from "../names";
import { ResolvedConfig } from "../config/schema";
import { applyObjects } from "../kube/apply";
import { renderDns } from "./render";

export interface CoreDnsTuningArgs {
  config: ResolvedConfig;
  provider: k8s.Provider;
}

/** coredns-custom, and NodeLocal DNSCache and the DNS autoscaler when enabled. */
export class CoreDnsTuning extends pulumi.ComponentResource {
  constructor(name: string, args: CoreDnsTuningArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.coreDnsTuning, name, { dns: args.config.dns }, opts);
    const objects = applyObjects(this, name, renderDns(args.config), args.provider);
    this.registerOutputs({ objects: objects.length });
  }
}
