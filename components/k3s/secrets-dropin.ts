import { stringify } from "yaml";
import type { NodeContext } from "../config/context";
import type { ClusterSecrets } from "../config/secrets";
import { generatedHeader } from "./paths";

/** The config.yaml.d drop-in that carries the node's K3s secrets, rendered from Pulumi secrets only. */

type DropInContext = Pick<NodeContext, "config" | "role">;

/** Keys the node's secrets drop-in may carry (values never leave Pulumi secrets). */
export function secretDropInKeys({ config, role }: DropInContext): string[] {
  // vpn-auth carries the Tailscale auth key: every node joins the tailnet (agent flag, servers too).
  const vpn = config.k3s.vpn ? ["vpn-auth"] : [];
  if (role === "agent") return ["token", ...vpn];
  const keys = ["token", "agent-token", ...vpn];
  if (config.k3s.datastore.type === "external") keys.push("datastore-endpoint");
  if (config.k3s.datastore.type === "etcd" && config.k3s.etcdSnapshots?.s3) keys.push("etcd-s3-access-key", "etcd-s3-secret-key");
  return keys;
}

/**
 * K3s' vpn-auth value: `name=tailscale,joinKey=<key>[,controlServerURL=<url>]` (docs.k3s.io
 * networking/distributed-multicloud). Written only to the secrets drop-in (a YAML string, so a
 * quote or newline in the key cannot break out), never to a command line.
 */
export function vpnAuth(vpn: { provider: string; controlServerUrl?: string }, key: string): string {
  return [`name=${vpn.provider}`, `joinKey=${key}`, ...(vpn.controlServerUrl ? [`controlServerURL=${vpn.controlServerUrl}`] : [])].join(",");
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
  if (config.k3s.vpn && secrets.vpnAuthKey !== undefined) values["vpn-auth"] = vpnAuth(config.k3s.vpn, secrets.vpnAuthKey);
  const defined = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
  return generatedHeader("K3s secrets drop-in", node.name) + stringify(defined, { lineWidth: 0 });
}
