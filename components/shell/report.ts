import { raw, sh } from "./sh";

/**
 * Where a remote command runs, as a failure names it: the node (config name), its host address
 * (`nodes[].host`) and the step (the resource name without the `<stack>-` prefix: a day-2 step's
 * name, or `<node>-<stage|secrets|os-prep|apply|preflight>` for a K3sNode's). None is secret.
 */
export interface StepSite {
  node: string;
  host: string;
  step: string;
}

/**
 * The line a failed step ends its stderr with: what `pulumi up` shows last for the step. The
 * command provider fails a command that exits non-zero with `Process exited with status N:
 * running "<command>":` followed by its stdout and stderr as they came (pulumi-command
 * provider/pkg/provider/remote/commandOutputs.go `run`), so this is the last line of the error.
 */
export function failureLine(site: StepSite, status: number | string): string {
  return `k3s-platform: ${site.node} (${site.host}): step ${site.step} failed (exit ${status})`;
}

/**
 * The one form every remote command takes (day-2 steps: operations/index.ts operationSteps;
 * node steps: plan/node.ts): `command` runs as it would alone (in a subshell, so an `exit` or a
 * `set -e` in it ends only that), then, when its status is not 0, one last stderr line
 * (failureLine) names node, host and step; the status is kept. The script's own message stays
 * above it. POSIX sh: the SSH user's login shell runs it (sshd: `$SHELL -c`). The command's stdin
 * is its own (a `bash -s` script reads it as before). The names go through `sh` as words.
 */
export function reportFailure(site: StepSite, command: string): string {
  // `( ` with a space: `((` would be bash arithmetic. The newline before `)` ends a comment or
  // heredoc the command may end with.
  return sh`( ${raw(command)}
)
${reportTail(site)}`.text;
}

/** failureLine as printf's format: the names and status are printf's arguments, never its format. */
const FAILURE_FORMAT = `${failureLine({ node: "%s", host: "%s", step: "%s" }, "%s")}\\n`;

/** What follows the command: its status, and on failure the line (FAILURE_FORMAT). */
function reportTail(site: StepSite) {
  return sh`rc=$?; [ "$rc" -eq 0 ] || printf ${FAILURE_FORMAT} ${site.node} ${site.host} ${site.step} "$rc" >&2; exit "$rc"`;
}

/** The command reportFailure(site, …) wraps in `text`; undefined when `text` is not that form for `site`. */
export function reportedCommand(site: StepSite, text: string): string | undefined {
  const head = "( ";
  const tail = `\n)\n${reportTail(site).text}`;
  return text.startsWith(head) && text.endsWith(tail) && text.length >= head.length + tail.length ? text.slice(head.length, text.length - tail.length) : undefined;
}
