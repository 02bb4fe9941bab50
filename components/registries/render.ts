import { stringify } from "yaml";
import type { NodeContext } from "../config/context";
import type { K3sConfig } from "../config/schema";
import type { Contribution } from "../plan/contribution";
import { PATHS } from "../k3s/paths";
import type { RegistryAuth } from "../config/secrets";
import { generatedHeader } from "../k3s/paths";

/** /etc/rancher/k3s/registries.yaml (K3s "Private Registry Configuration"): mirrors, TLS, auth. */
export function renderRegistriesYaml(k3s: K3sConfig, nodeName: string, auth: RegistryAuth = {}): string | undefined {
  const registries = k3s.registries;
  const hosts = new Set([...Object.keys(registries?.configs ?? {}), ...Object.keys(auth)]);
  if (!registries && hosts.size === 0) return undefined;
  const configs: Record<string, unknown> = {};
  for (const host of [...hosts].sort()) {
    const tls = registries?.configs[host]?.tls;
    configs[host] = {
      ...(auth[host] ? { auth: auth[host] } : {}),
      ...(tls
        ? {
            tls: {
              ...(tls.caFile ? { ca_file: tls.caFile } : {}),
              ...(tls.certFile ? { cert_file: tls.certFile } : {}),
              ...(tls.keyFile ? { key_file: tls.keyFile } : {}),
              ...(tls.insecureSkipVerify !== undefined ? { insecure_skip_verify: tls.insecureSkipVerify } : {}),
            },
          }
        : {}),
    };
  }
  const doc: Record<string, unknown> = { mirrors: registries?.mirrors ?? {} };
  if (hosts.size > 0) doc.configs = configs;
  return generatedHeader("K3s registries.yaml", nodeName) + stringify(doc, { lineWidth: 0 });
}

/** registries.yaml's name in the bundle (public) or among the secret files (with registryAuth). */
export const REGISTRIES_FILE = { staged: "registries.yaml", secret: "registries" } as const;

/**
 * registries concern: with registryAuth set, registries.yaml carries credentials and is a secret
 * file; otherwise it is staged (when there is anything to write).
 */
export function contribute(ctx: NodeContext): Contribution {
  const { config, node } = ctx;
  if (ctx.hasRegistryAuth) {
    return {
      secretFiles: [
        {
          name: REGISTRIES_FILE.secret,
          target: PATHS.registriesYaml,
          mode: "0600",
          render: (s) => renderRegistriesYaml(config.k3s, node.name, s.registryAuth ?? {}) ?? "",
        },
      ],
    };
  }
  const content = renderRegistriesYaml(config.k3s, node.name);
  return content ? { files: [{ name: REGISTRIES_FILE.staged, content, target: PATHS.registriesYaml, mode: "0600" }] } : {};
}
