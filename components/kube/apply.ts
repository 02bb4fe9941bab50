import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KubeObject, kubeResourceName } from "./objects";

export { kubeResourceName };

/** The typed @pulumi/kubernetes classes for the kinds our renderers produce. */
type KubeResourceClass = new (name: string, args: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;

// The classes differ only in their args type; the renderers type-check each object's fields.
const CLASSES: Record<string, KubeResourceClass> = {
  "v1/Namespace": k8s.core.v1.Namespace as unknown as KubeResourceClass,
  "v1/ResourceQuota": k8s.core.v1.ResourceQuota as unknown as KubeResourceClass,
  "v1/LimitRange": k8s.core.v1.LimitRange as unknown as KubeResourceClass,
  "v1/ConfigMap": k8s.core.v1.ConfigMap as unknown as KubeResourceClass,
  "v1/Service": k8s.core.v1.Service as unknown as KubeResourceClass,
  "v1/ServiceAccount": k8s.core.v1.ServiceAccount as unknown as KubeResourceClass,
  "networking.k8s.io/v1/NetworkPolicy": k8s.networking.v1.NetworkPolicy as unknown as KubeResourceClass,
  "apps/v1/DaemonSet": k8s.apps.v1.DaemonSet as unknown as KubeResourceClass,
  "apps/v1/Deployment": k8s.apps.v1.Deployment as unknown as KubeResourceClass,
  "rbac.authorization.k8s.io/v1/ClusterRole": k8s.rbac.v1.ClusterRole as unknown as KubeResourceClass,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding as unknown as KubeResourceClass,
  "node.k8s.io/v1/RuntimeClass": k8s.node.v1.RuntimeClass as unknown as KubeResourceClass,
};

/**
 * Registers rendered objects through the cluster's provider. Namespaced objects wait for a
 * Namespace registered in the same call; names are fixed, so replacements delete first.
 */
export function applyObjects(
  parent: pulumi.Resource,
  prefix: string,
  objects: KubeObject[],
  provider: k8s.Provider,
): pulumi.CustomResource[] {
  const namespaces = new Map<string, pulumi.CustomResource>();
  return objects.map((obj) => {
    const cls = CLASSES[`${obj.apiVersion}/${obj.kind}`];
    if (!cls) throw new Error(`no resource class for ${obj.apiVersion} ${obj.kind}`);
    const { apiVersion: _apiVersion, kind: _kind, ...args } = obj;
    const ns = obj.metadata.namespace ? namespaces.get(obj.metadata.namespace) : undefined;
    const resource = new cls(kubeResourceName(prefix, obj), args, {
      parent,
      provider,
      deleteBeforeReplace: true,
      dependsOn: ns ? [ns] : [],
    });
    if (obj.kind === "Namespace") namespaces.set(obj.metadata.name, resource);
    return resource;
  });
}
