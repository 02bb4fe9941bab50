import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { StackFileError } from "../components/config/stack-file";
import { nearest } from "../components/config/validate";

/**
 * The one argument parser of the npm scripts written in TypeScript (render, preview:md, bench,
 * docs:allowlist): node:util parseArgs, strict (no unknown option, no positional argument, no
 * option given twice). A user mistake never ends in a stack trace: a usage error prints one line
 * plus the usage and exits 2 (`UsageError`); a problem in the user's files (config, saved
 * output) prints its lines and exits 1 (`ConfigFailure`, `StackFileError`, a file the system
 * refuses). Anything else is a bug and keeps its stack trace.
 */

export interface CliOption {
  type: "string" | "boolean";
  short?: string;
  /** What a string option takes, for the help: `<dir>`. */
  value?: string;
  help: string;
}

export interface CliSpec<O extends Record<string, CliOption>> {
  /** As messages start: `render`. */
  name: string;
  /** The usage lines, each a full command (`npm run render -- --stack <env> --out <dir>`). */
  usage: string[];
  /** What the command does, a few lines. */
  description: string;
  options: O;
  /** Trailing help paragraphs (environment variables, exit codes). */
  notes?: string[];
}

export type CliValues<O extends Record<string, CliOption>> = { [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : string };

/** How the command was called is wrong: one line, then the usage; exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A problem in the user's files (an invalid config): the message as is, exit 1. */
export class ConfigFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFailure";
  }
}

const HELP: CliOption = { type: "boolean", short: "h", help: "print this help and exit" };

function optionLabel(name: string, o: CliOption): string {
  return `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "<value>"}` : ""}`;
}

export function helpText<O extends Record<string, CliOption>>(spec: CliSpec<O>): string {
  const all: Array<[string, CliOption]> = [...Object.entries(spec.options), ["help", HELP]];
  const labels = all.map(([name, o]) => optionLabel(name, o));
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  const lines = [
    ...spec.usage.map((u, i) => `${i === 0 ? "usage: " : "       "}${u}`),
    "",
    spec.description,
    "",
    "options:",
    ...all.map(([, o], i) => `  ${labels[i]!.padEnd(width)}${o.help}`),
  ];
  for (const note of spec.notes ?? []) lines.push("", note);
  return lines.join("\n") + "\n";
}

function usageLines<O extends Record<string, CliOption>>(spec: CliSpec<O>): string {
  return spec.usage.map((u, i) => `${i === 0 ? "usage: " : "       "}${u}`).join("\n") + `\n(--help for the options)`;
}

/** parseArgs' messages are long and suggest `--` tricks; say what is wrong in our words. */
function parseArgsMessage(e: Error & { code?: string }, known: string[]): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? "";
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const hit = nearest(quoted.replace(/^-+/, ""), known);
      return `unknown option ${quoted}${hit ? ` (did you mean --${hit}?)` : ""}`;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument "${quoted}": this command takes only options`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(e.message) ? `${quoted.replace(/ <value>$/, "")} needs a value` : `${quoted} takes no value`;
    default:
      return e.message.split("\n")[0]!;
  }
}

/**
 * Parses `argv` against the spec; `"help"` when -h/--help is among the options (before any
 * `--`), whatever else is there, so asking for help never fails.
 */
export function parseCli<O extends Record<string, CliOption>>(spec: CliSpec<O>, argv: string[]): CliValues<O> | "help" {
  const end = argv.indexOf("--");
  if ((end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h")) return "help";
  const options = Object.fromEntries(Object.entries(spec.options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]));
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e as Error, Object.keys(spec.options)));
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== "option") continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given more than once`);
    seen.add(t.name);
    if (t.value === "") throw new UsageError(`--${t.name} needs a value`);
  }
  return { ...parsed.values } as CliValues<O>;
}

/** What a path named on the command line is: a usage error when it is not the kind asked for. */
export function checkPath(option: string, path: string, want: "file" | "directory", mayBeMissing = false): void {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    if (mayBeMissing) return;
    throw new UsageError(`--${option} ${path} does not exist`);
  }
  if (want === "file" && isDir) throw new UsageError(`--${option} ${path} is a directory; give a file`);
  if (want === "directory" && !isDir) throw new UsageError(`--${option} ${path} is a file; give a directory`);
}

/** An error the operating system raised on a path (ENOENT, EACCES, ENOTDIR…): the user's to fix, no trace. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && typeof (e as NodeJS.ErrnoException).syscall === "string";
}

/** The exit code for `e`, after printing it the way the module comment describes. */
export function reportError<O extends Record<string, CliOption>>(spec: CliSpec<O>, e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`${spec.name}: ${e.message}\n${usageLines(spec)}\n`);
    return 2;
  }
  if (e instanceof ConfigFailure) {
    process.stderr.write(`${e.message}\n`);
    return 1;
  }
  if (e instanceof StackFileError || isSystemError(e)) {
    process.stderr.write(`${spec.name}: ${(e as Error).message}\n`);
    return 1;
  }
  // A bug, not a user mistake: keep the trace.
  process.stderr.write(`${spec.name}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 70;
}

/**
 * Runs a CLI: parses process.argv, prints the help (exit 0) or calls `main`, and turns what it
 * throws into one message and an exit code. `main` returns the exit code (0 when it returns nothing).
 */
export function runCli<O extends Record<string, CliOption>>(
  spec: CliSpec<O>,
  main: (values: CliValues<O>) => number | void | Promise<number | void>,
  argv: string[] = process.argv.slice(2),
): Promise<number> {
  const run = async (): Promise<number> => {
    const values = parseCli(spec, argv);
    if (values === "help") {
      process.stdout.write(helpText(spec));
      return 0;
    }
    return (await main(values)) ?? 0;
  };
  return run().then(
    (code) => (process.exitCode = code),
    (e: unknown) => (process.exitCode = reportError(spec, e)),
  );
}
