/**
 * The command inside shell/report.ts's form (reportFailure), whatever node, host and step it
 * names; undefined when `text` is not in that form. For tests that check what a step runs.
 */
export function innerCommand(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const m = /^\( ([\s\S]*)\n\)\nrc=\$\?; \[ "\$rc" -eq 0 \] \|\| printf '[^']*' \S+ \S+ \S+ "\$rc" >&2; exit "\$rc"$/.exec(text);
  return m?.[1];
}
