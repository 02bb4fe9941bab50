import { z } from "zod";

/**
 * Control characters (C0, DEL, C1 NEL, Unicode line/paragraph separators). A newline in a value
 * that reaches a script, the install script's env file (k3s.service.env: one variable per line)
 * or a YAML scalar K3s reads as a flag starts a new command, variable or flag: e.g. a proxy value
 * with "\nK3S_CLUSTER_RESET=true" added that variable to the unit's environment.
 */
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export const SINGLE_LINE_MESSAGE =
  "must be a single line without control characters (the value reaches a host script, an env file or a K3s flag)";

/**
 * The one refinement for every string field that can reach a host: `singleLine()` for a plain
 * string, `singleLine(z.string().startsWith("/"))` to keep other checks. URLs: `singleLine().pipe(z.url())`,
 * never `singleLine(z.url())`: z.url() passes on the WHATWG-normalised value with newlines stripped,
 * so a refinement after it never sees them.
 */
export function singleLine(): z.ZodString;
export function singleLine<S extends z.ZodType<string>>(schema: S): S;
export function singleLine(schema: z.ZodType<string> = z.string()): z.ZodType<string> {
  return schema.refine((v) => !CONTROL_CHARACTERS.test(v), { message: SINGLE_LINE_MESSAGE });
}
