import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { isSecretKey, PROJECT, SecretKey } from "./schema";
import type { ConfigIssue } from "./validate";

/**
 * The one reader of `k3s-platform:*` config, for the program (values from the engine) and for
 * `npm run render`, tests and the policy pack (a Pulumi.<env>.yaml read without the engine). It
 * sees every key of the project namespace, so an unknown key (`tenant:` for `tenants:`) reaches
 * the strict schema and is refused in both, and it refuses plaintext values for secure keys.
 * Secure values stay encrypted: only their presence is recorded.
 */
export interface StackFile {
  /** `k3s-platform:*` values without the namespace, secure ones left out. */
  raw: Record<string, unknown>;
  /** Secret keys that have a secure value. */
  secrets: Set<SecretKey>;
  /** Keys outside our namespace (e.g. provider config), kept for the engine. */
  other: Record<string, unknown>;
  /** Plaintext values for secure keys, each with the command that stores it encrypted. */
  issues: ConfigIssue[];
}

/** A stack file that cannot be read: missing, or not YAML (with file, line and column). */
export class StackFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackFileError";
  }
}

/** `secure: <ciphertext>` as Pulumi writes it; an object secret set with `--path` is secure when every entry is. */
function isSecureValue(value: unknown): boolean {
  if (!value || typeof value !== "object") return false;
  const obj = value as Record<string, unknown>;
  if (!Array.isArray(obj) && Object.keys(obj).length === 1 && typeof obj.secure === "string") return true;
  const entries = Object.values(obj);
  return entries.length > 0 && entries.every(isSecureValue);
}

/** The Pulumi stacks beside `file` (Pulumi.<stack>.yaml), for "unknown stack" errors. */
export function stacksIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

/** Parses YAML text, turning syntax errors into `file:line:column: message`. */
export function parseYamlFile(path: string): unknown {
  if (!existsSync(path)) {
    const stack = /^Pulumi\.(.+)\.ya?ml$/.exec(basename(path))?.[1];
    const stacks = stacksIn(dirname(path) || ".");
    throw new StackFileError(
      stack !== undefined
        ? `no stack "${stack}": ${path} does not exist; stacks here: ${stacks.length ? stacks.join(", ") : "(none)"}`
        : `${path} does not exist`,
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(readFileSync(path, "utf8"), { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new StackFileError(
      doc.errors
        .map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return `${path}:${pos.line}:${pos.col}: ${e.message.split("\n")[0]}`;
        })
        .join("\n"),
    );
  }
  try {
    // `yaml` refuses alias expansion past maxAliasCount (100) with a ReferenceError ("billion laughs").
    return doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
  } catch (e) {
    throw new StackFileError(`${path}: ${(e as Error).message} (YAML aliases expand past ${YAML_MAX_ALIAS_COUNT} nodes; write the values out)`);
  }
}

/** How many nodes YAML aliases may expand to in a stack file (the `yaml` library's default). */
const YAML_MAX_ALIAS_COUNT = 100;

export function readStackFile(path: string): StackFile {
  const doc = (parseYamlFile(path) ?? {}) as { config?: Record<string, unknown> };
  return splitStackConfig(doc.config ?? {});
}

/** The command that stores a secure key encrypted (never echoing the value). */
export function setSecretCommand(key: SecretKey): string {
  const object = key === "registryAuth" || key === "encryptionKeys";
  return object
    ? `pulumi config set --secret --path '${PROJECT}:${key}.<field>' <value> (once per field)`
    : `pulumi config set --secret ${PROJECT}:${key} <value>`;
}

/**
 * Splits a stack's config map into our values, secrets present and other keys. `isSecure` says
 * whether a value is stored encrypted: `secure:` entries in a stack file, the engine's secret
 * keys in the program.
 */
export function splitStackConfig(
  config: Record<string, unknown>,
  isSecure: (fullKey: string, value: unknown) => boolean = (_k, v) => isSecureValue(v),
): StackFile {
  const raw: Record<string, unknown> = {};
  const secrets = new Set<SecretKey>();
  const other: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  const prefix = `${PROJECT}:`;
  for (const [fullKey, value] of Object.entries(config)) {
    if (!fullKey.startsWith(prefix)) {
      other[fullKey] = value;
      continue;
    }
    const key = fullKey.slice(prefix.length);
    if (isSecretKey(key)) {
      if (value === undefined || value === null) continue;
      if (isSecure(fullKey, value)) secrets.add(key);
      else issues.push({ path: fullKey, message: `plaintext value for a secret key (it would sit unencrypted in the stack file and in state); remove it and run: ${setSecretCommand(key)}` });
    } else {
      raw[key] = value;
    }
  }
  return { raw, secrets, other, issues };
}

/** Where a stack's file lives. */
export const stackFilePath = (dir: string, stack: string) => join(dir, `Pulumi.${stack}.yaml`);
