import { heredoc, shellQuote } from "./quote";

/**
 * The one way generated shell is written. `sh\`...\`` quotes every `${value}` through shellQuote;
 * only a `Shell` fragment (another `sh` result, or text explicitly marked with `raw()`) is
 * inserted as is. The template also tracks the quoting context of its literal text and throws
 * when a value would land inside '...' or "..." (where a quoted value is not a word, and
 * `"$(...)"` inside a value would run): messages take values as separate words, or via shell
 * variables set once from a quoted value. In a comment, control characters are replaced so a
 * value can't end the comment.
 */
export class Shell {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Trusted shell text, inserted verbatim: use only for text written in this repository. */
export function raw(text: string): Shell {
  if (typeof text !== "string") throw new Error(`sh: raw() takes a string, not ${describe(text)}`);
  return new Shell(text);
}

/** Fragments joined with a separator (newline by default). */
export function joinShell(parts: Shell[], separator = "\n"): Shell {
  // `+`, not Array.join: a part may be a long text every node's script shares (a NO_PROXY or a
  // firewall source list naming every node), which join would copy into each; `+` links it.
  let text = "";
  parts.forEach((p, i) => (text = i === 0 ? p.text : text + separator + p.text));
  return new Shell(text);
}

/**
 * A quoted heredoc (`<<'TAG'` … `TAG`) carrying `body` verbatim: no expansion happens in it and
 * the terminator is chosen so the body can't contain it, so any body is safe.
 */
export function heredocBody(body: string, tag = "EOF"): { open: Shell; body: Shell } {
  const h = heredoc(body, tag);
  return { open: raw(h.open), body: raw(`${body}${body.endsWith("\n") || body === "" ? "" : "\n"}${h.close}`) };
}

/** What a value that is not interpolable is, for the error message. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "number") return `the number ${value}`;
  return `a value of type ${typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value}`;
}

export type ShellValue = string | number | Shell | ReadonlyArray<string | number | Shell>;

type Context = "word" | "single" | "double" | "comment";

/** Quoting state: the current context, plus the double-quoted strings a `$(...)` was opened in. */
interface State {
  ctx: Context;
  /** One entry per `$(` opened inside "...": the paren depth inside it. */
  subshells: number[];
}

/** Advances the quoting state over literal shell text (good enough for the scripts we write). */
function scan(text: string, state: State, lineStart: boolean): State {
  let ctx = state.ctx;
  const subshells = [...state.subshells];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    switch (ctx) {
      case "comment":
        if (c === "\n") ctx = "word";
        break;
      case "single":
        if (c === "'") ctx = "word";
        break;
      case "double":
        if (c === "\\") i++;
        else if (c === '"') ctx = "word";
        else if (c === "$" && text[i + 1] === "(") {
          subshells.push(1);
          ctx = "word";
          i++;
        }
        break;
      case "word":
        if (c === "\\") i++;
        else if (c === "'") ctx = "single";
        else if (c === '"') ctx = "double";
        else if (c === "#" && (i === 0 ? lineStart : /[\s;&|(]/.test(text[i - 1]!))) ctx = "comment";
        else if (subshells.length > 0 && c === "(") subshells[subshells.length - 1]!++;
        else if (subshells.length > 0 && c === ")") {
          if (--subshells[subshells.length - 1]! === 0) {
            subshells.pop();
            ctx = "double";
          }
        }
        break;
    }
  }
  return { ctx, subshells };
}

function one(value: string | number | Shell, ctx: Context, where: string): string {
  if (value instanceof Shell) return value.text;
  // A type hole (a misspelt or missing field) must fail the program, never reach a host as the
  // word "undefined" (issue 21: tsx does not type-check, so this is the runtime guard).
  if (typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
    throw new Error(`sh: ${describe(value)} interpolated after ${JSON.stringify(where.slice(-60))}; only strings, finite numbers and Shell fragments may be`);
  }
  const text = String(value);
  if (ctx === "comment") return text.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, "?");
  if (ctx !== "word") {
    throw new Error(`sh: a value is interpolated inside ${ctx} quotes after ${JSON.stringify(where.slice(-60))}; pass it as its own word`);
  }
  return shellQuote(text);
}

export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): Shell {
  let out = strings[0]!;
  // Comments may begin a fragment only at a line start; a template starts at a line start.
  let state = scan(strings[0]!, { ctx: "word", subshells: [] }, true);
  values.forEach((value, i) => {
    const items = Array.isArray(value) ? (value as ReadonlyArray<string | number | Shell>) : [value as string | number | Shell];
    out += items.map((v) => one(v, state.ctx, out)).join(" ");
    const next = strings[i + 1]!;
    out += next;
    state = scan(next, state, false);
  });
  return new Shell(out);
}
