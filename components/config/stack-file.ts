import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Document, isMap, isScalar, isSeq, LineCounter, Node, parseDocument, visit, YAMLError } from "yaml";
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
  const text = readFileSync(path, "utf8");
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    const opened = new Set<Node>();
    throw new StackFileError(
      doc.errors
        .map((e) => {
          const { offset, note } = yamlErrorOffset(doc, e, text, opened);
          const pos = lines.linePos(offset);
          return `${path}:${pos.line}:${pos.col}: ${e.message.split("\n")[0]}${note}`;
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

/**
 * Where a YAML error really is. The `yaml` library places several at a line's start or at the
 * end of the input: an unclosed `[`, `{` or quote at the end (where it noticed), a misindented
 * key at column 1 of its line. Those move to the opening bracket or quote (`opened` holds the
 * ones already named, so nested unclosed brackets each get their own) and to the key.
 */
function yamlErrorOffset(doc: Document, e: YAMLError, text: string, opened: Set<Node>): { offset: number; note: string } {
  const at = e.pos[0];
  const kind = /^Flow (map|sequence) /.exec(e.message)?.[1] ?? (e.code === "MISSING_CHAR" ? /closing ("|')quote/.exec(e.message)?.[1] : undefined);
  if (kind && (kind !== "map" && kind !== "sequence" || /end with/.test(e.message))) {
    const candidates: Node[] = [];
    visit(doc, (_key, visited) => {
      if (!isMap(visited) && !isSeq(visited) && !isScalar(visited)) return;
      const node: Node = visited;
      if (!node.range || node.range[1] !== at || opened.has(node)) return;
      const flowMap = kind === "map" && isMap(node) && node.flow;
      const flowSeq = kind === "sequence" && isSeq(node) && node.flow;
      const quoted = isScalar(node) && node.type === (kind === '"' ? "QUOTE_DOUBLE" : "QUOTE_SINGLE");
      if (flowMap || flowSeq || quoted) candidates.push(node);
    });
    // Innermost first: the library reports nested unclosed collections inside out.
    const node = candidates.sort((a, b) => b.range![0] - a.range![0])[0];
    if (node) {
      opened.add(node);
      const what = isScalar(node) ? "quote" : `"${text[node.range![0]]}"`;
      return { offset: node.range![0], note: ` (the ${what} opened here is not closed)` };
    }
    return { offset: at, note: "" };
  }
  // Inside a line's leading spaces: the problem is what the line starts with.
  const lineStart = text.lastIndexOf("\n", at - 1) + 1;
  if (/^ *$/.test(text.slice(lineStart, at)) && text[at] === " ") {
    const first = text.slice(at).search(/[^ ]/);
    if (first > 0 && text[at + first] !== "\n" && text[at + first] !== "\r") return { offset: at + first, note: "" };
  }
  return { offset: at, note: "" };
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
