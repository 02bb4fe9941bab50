import { z } from "zod";
import { DURATION, SECRET_DESCRIPTIONS, SECRET_KEYS, stackSchema } from "./schema";

/**
 * docs/configuration-reference.md, generated from the zod schema (issue 25): every key with its
 * type, default, allowed values and description (the schema's `.describe()`), so the reference
 * cannot drift from what validation accepts. `npm run docs:config` writes it; a test keeps the
 * committed page equal to this output. The walk reads zod's own JSON Schema export
 * (`z.toJSONSchema`, input side: defaults as a user writes them).
 */

/** The part of JSON Schema (draft 2020-12) that z.toJSONSchema emits for this schema. */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}

export interface ReferenceRow {
  /** Dotted path under `k3s-platform:`; `[]` is a list item, `<name>` a map key. */
  key: string;
  type: string;
  /** The default as YAML would carry it, `required`, or empty. */
  default: string;
  description: string;
}

const code = (v: unknown) => `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;

/** Names for the string formats the schema's primitives check (components/config/schema/primitives.ts). */
function stringType(s: JsonSchema): string {
  if (s.pattern === DURATION.source) return "duration (`40s`, `5m`, `1h30m`)";
  if (s.pattern === "^\\/[^\\0]*$") return "absolute path";
  if (s.pattern === "^[0-9a-f]{64}$") return "sha256 (64 hex digits)";
  if (s.format === "uri") return "URL";
  return "string";
}

function numberType(s: JsonSchema, name: string): string {
  // zod writes .int() as the safe-integer range: only a bound of the schema's own is worth printing.
  const lo = s.minimum !== undefined && s.minimum > Number.MIN_SAFE_INTEGER ? s.minimum : undefined;
  const hi = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  if (lo !== undefined && hi !== undefined) return `${name} ${lo}–${hi}`;
  if (lo !== undefined) return `${name} ≥ ${lo}`;
  if (s.exclusiveMinimum !== undefined) return `${name} > ${s.exclusiveMinimum}`;
  if (hi !== undefined) return `${name} ≤ ${hi}`;
  return name;
}

function branches(s: JsonSchema): JsonSchema[] | undefined {
  return s.anyOf ?? s.oneOf;
}

/** The type column: allowed values for enums and literals, ranges for numbers, element types for lists and maps. */
export function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map(code).join(" | ");
  if (s.const !== undefined) return code(s.const);
  const alts = branches(s);
  if (alts) return [...new Set(alts.map(typeOf))].join(" or ");
  if (Array.isArray(s.type)) return s.type.join(" or ");
  switch (s.type) {
    case "string": return stringType(s);
    case "integer": return numberType(s, "integer");
    case "number": return numberType(s, "number");
    case "boolean": return "boolean";
    case "array": return `list of ${s.items ? typeOf(s.items) : "any"}${s.minItems ? ` (at least ${s.minItems})` : ""}`;
    case "object": {
      if (s.properties) return "object";
      if (typeof s.additionalProperties === "object") {
        const keys = s.propertyNames?.enum ? s.propertyNames.enum.map(code).join(" | ") : "name";
        return `map of ${keys} → ${typeOf(s.additionalProperties)}`;
      }
      return "object";
    }
    default: return "any";
  }
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (s.default !== undefined) {
    const d = s.default;
    if (d !== null && typeof d === "object" && Object.keys(d).length === 0 && !Array.isArray(d)) return "";
    return code(d);
  }
  return required ? "required" : "";
}

/** The object schemas a value may be (its own, or each branch that is an object). */
function objectBranches(s: JsonSchema): JsonSchema[] {
  const alts = branches(s);
  if (alts) return alts.flatMap(objectBranches);
  return s.properties ? [s] : [];
}

function walk(s: JsonSchema, key: string, required: boolean, rows: ReferenceRow[]): void {
  rows.push({ key, type: typeOf(s), default: defaultOf(s, required), description: (s.description ?? "").trim() });
  // An object's keys, merged over the branches of a union of objects (datastore: etcd | sqlite | external).
  const children = new Map<string, { schemas: JsonSchema[]; required: boolean }>();
  for (const o of objectBranches(s)) {
    for (const [k, v] of Object.entries(o.properties ?? {})) {
      const entry = children.get(k) ?? { schemas: [], required: true };
      entry.schemas.push(v);
      entry.required &&= (o.required ?? []).includes(k);
      children.set(k, entry);
    }
  }
  for (const [k, { schemas, required: req }] of children) {
    const one = schemas.length === 1 ? schemas[0]! : { anyOf: schemas, description: [...new Set(schemas.map((x) => x.description).filter(Boolean))].join(" ") };
    walk(one, `${key}.${k}`, req, rows);
  }
  if (s.type === "array" && s.items && objectBranches(s.items).length) walkChildren(s.items, `${key}[]`, rows);
  if (typeof s.additionalProperties === "object" && objectBranches(s.additionalProperties).length) walkChildren(s.additionalProperties, `${key}.<name>`, rows);
}

/** The keys of list items and map values (the item itself is described by its parent's row). */
function walkChildren(s: JsonSchema, key: string, rows: ReferenceRow[]): void {
  const before = rows.length;
  walk(s, key, false, rows);
  rows.splice(before, 1);
}

function rowsOf(io: "input" | "output"): ReferenceRow[] {
  const root = z.toJSONSchema(stackSchema, { io, unrepresentable: "any" }) as JsonSchema;
  const rows: ReferenceRow[] = [];
  for (const [k, v] of Object.entries(root.properties ?? {})) walk(v, k, (root.required ?? []).includes(k), rows);
  return rows;
}

/**
 * Every key of the stack schema, in schema order: types as a user writes them (the input side).
 * Defaults come from the output side: zod drops a default from the input side wherever the value
 * under it transforms (a list of tenants holds trimmed strings), though it applies the same way.
 */
export function referenceRows(): ReferenceRow[] {
  const output = new Map(rowsOf("output").map((r) => [r.key, r.default]));
  return rowsOf("input").map((r) => {
    const d = output.get(r.key);
    return r.default === "" && d !== undefined && d !== "required" ? { ...r, default: d } : r;
  });
}

const cell = (text: string) => text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");

/** The page: one table per top-level key, then the secure keys. */
export function renderConfigReference(): string {
  const rows = referenceRows();
  const lines = [
    "# Configuration reference (generated)",
    "",
    "Every key of the `k3s-platform:` namespace in a stack file, generated from the schema",
    "(`components/config/schema`) by `npm run docs:config`; a test keeps this page equal to its output.",
    "What each setting does on the hosts, and the rules between keys, are in [configuration.md](configuration.md).",
    "`[]` marks a list item, `<name>` a key of a map. A default is what an absent key becomes; some are",
    "resolved per environment (the description says so).",
    "",
  ];
  for (const top of rows.filter((r) => !r.key.includes(".") && !r.key.includes("["))) {
    lines.push(`## \`${top.key}\``, "");
    lines.push("| key | type | default | description |", "| --- | --- | --- | --- |");
    for (const r of rows.filter((x) => x.key === top.key || x.key.startsWith(`${top.key}.`) || x.key.startsWith(`${top.key}[]`))) {
      lines.push(`| \`${cell(r.key)}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`);
    }
    lines.push("");
  }
  lines.push("## Secure keys", "", "Set with `pulumi config set --secret k3s-platform:<key>`; a plaintext value is refused.", "");
  lines.push("| key | description |", "| --- | --- |");
  for (const k of SECRET_KEYS) lines.push(`| \`${k}\` | ${cell(SECRET_DESCRIPTIONS[k])} |`);
  return `${lines.join("\n")}\n`;
}
