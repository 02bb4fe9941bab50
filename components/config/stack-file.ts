import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { PROJECT, SECRET_KEYS, SecretKey } from "./schema";

/**
 * Reads a Pulumi.<env>.yaml without the engine, for `npm run render`, tests and the policy pack.
 * Secure values stay encrypted: we only record that they are present.
 */
export interface StackFile {
  /** `k3s-platform:*` values without the namespace, secure ones left out. */
  raw: Record<string, unknown>;
  /** Secret keys that have a `secure:` value. */
  secrets: Set<SecretKey>;
  /** Keys outside our namespace (e.g. provider config), kept for the engine. */
  other: Record<string, unknown>;
}

export function readStackFile(path: string): StackFile {
  const doc = (parse(readFileSync(path, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  return splitStackConfig(doc.config ?? {});
}

export function splitStackConfig(config: Record<string, unknown>): StackFile {
  const raw: Record<string, unknown> = {};
  const secrets = new Set<SecretKey>();
  const other: Record<string, unknown> = {};
  const prefix = `${PROJECT}:`;
  for (const [fullKey, value] of Object.entries(config)) {
    if (!fullKey.startsWith(prefix)) {
      other[fullKey] = value;
      continue;
    }
    const key = fullKey.slice(prefix.length);
    if ((SECRET_KEYS as readonly string[]).includes(key)) {
      if (value !== undefined && value !== null) secrets.add(key as SecretKey);
    } else {
      raw[key] = value;
    }
  }
  return { raw, secrets, other };
}
