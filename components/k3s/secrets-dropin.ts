import { stringify } from "yaml";
import type { NodeContext } from "../config/context";
import type { ClusterSecrets } from "../config/secrets";
import { generatedHeader } from "./paths";

/** The config.yaml.d drop-in that carries the node's K3s secrets, rendered from Pulumi secrets only. */

type DropInContext = Pick<NodeContext, "config" | "role">;

/** Keys the node's secrets drop-in may carry (values never leave Pulumi secrets). */
export function secretDropInKeys({ config, role }: DropInContext): string[] {
  if (role === "agent") return ["token"];
  const keys = ["token", "agent-token"];
  if (config.k3s.datastore.type === "external") keys.push("datastore-endpoint");
  if (config.k3s.datastore.type === "etcd" && config.k3s.etcdSnapshots?.s3) keys.push("etcd-s3-access-key", "etcd-s3-secret-key");
  return keys;
}

export function renderSecretDropIn(ctx: DropInContext & Pick<NodeContext, "node">, secrets: ClusterSecrets): string {
  const { config, role, node } = ctx;
  const values: Record<string, string | undefined> =
    role === "agent"
      ? { token: secrets.agentToken ?? secrets.token }
      : {
          "token": secrets.token,
          "agent-token": secrets.agentToken,
          "datastore-endpoint": config.k3s.datastore.type === "external" ? secrets.datastoreEndpoint : undefined,
          ...(secretDropInKeys(ctx).includes("etcd-s3-access-key")
            ? { "etcd-s3-access-key": secrets.etcdS3AccessKey, "etcd-s3-secret-key": secrets.etcdS3SecretKey }
            : {}),
        };
  const defined = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
  return generatedHeader("K3s secrets drop-in", node.name) + stringify(defined, { lineWidth: 0 });
}
