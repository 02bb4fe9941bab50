import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { TYPES } from "../names";
import { ResolvedConfig } from "../config/schema";
import { applyObjects } from "../kube/apply";
import { renderTenants } from "./render";

export interface TenantNamespacesArgs {
  config: ResolvedConfig;
  provider: k8s.Provider;
}

/** Every tenant's Namespace, ResourceQuota, LimitRange and NetworkPolicies. */
export class TenantNamespaces extends pulumi.ComponentResource {
  readonly namespaces: string[];

  constructor(name: string, args: TenantNamespacesArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.tenantNamespaces, name, { tenants: args.config.tenants }, opts);
    applyObjects(this, name, renderTenants(args.config), args.provider);
    this.namespaces = args.config.tenants.map((t) => t.namespace);
    this.registerOutputs({ namespaces: this.namespaces });
  }
}
