import { homedir } from "node:os";

/**
 * What a saved `pulumi preview --json` digest or `--event-log` may hold, for the preview:md
 * fixtures that test:cluster regenerates from real runs (scripts/preview-fixtures.sh).
 *
 * Measured with pulumi 3.260 and @pulumi/pulumi 3.260 (Node SDK): the SDK sends a debug
 * diagnostic for every RPC it finishes (`RegisterResource RPC finished: …; resp: …`,
 * runtime/resource.js), and that response carries a secret input's plaintext inside its secret
 * envelope — here the kubernetes provider's kubeconfig with `client-key-data`. The CLI does not
 * show debug diagnostics, but `--event-log` records every engine event, debug ones included. The
 * JSON digest and every non-debug event show secrets as `[secret]`.
 */

/** Patterns of secret material; each names what it catches. */
const SECRET_PATTERNS: Array<[string, RegExp]> = [
  ["kubeconfig client key", /client-key-data/],
  ["kubeconfig client certificate", /client-certificate-data/],
  ["PEM block", /-----BEGIN [A-Z ]+-----/],
  ["base64 PEM block", /LS0tLS1CRUdJTi/],
  ["token value", /\btoken["']?\s*[:=]\s*["']?(?!\[secret\]|["',}\s])[^\s"',}]/i],
  ["password value", /\bpassword["']?\s*[:=]\s*["']?(?!\[secret\]|["',}\s])[^\s"',}]/i],
  ["K3s token", /K10[0-9a-f]{40,}/],
  ["secret envelope with plaintext", /"plaintext"\s*:/],
  ["private key", /PRIVATE KEY/],
];

/** The names of the secret patterns `text` matches (empty when clean). */
export function secretMaterial(text: string): string[] {
  return SECRET_PATTERNS.filter(([, re]) => re.test(text)).map(([name]) => name);
}

interface LoggedEvent {
  diagnosticEvent?: { severity?: string; message?: string };
}

const parse = (line: string): LoggedEvent => JSON.parse(line) as LoggedEvent;

/** Is this event-log line the SDK's debug trace (see above)? */
export const isDebugDiagnostic = (line: string): boolean => parse(line).diagnosticEvent?.severity === "debug";

/**
 * An event log as a fixture: without the SDK's debug diagnostics (they carry secrets' plaintext and
 * are never shown), and with this machine's paths (repository, home) replaced by `$REPO` and `~`,
 * so a regenerated fixture differs only where the engine's output did.
 */
export function fixtureEventLog(events: string, repo: string): string {
  const lines = events.split("\n").filter((l) => l.trim() !== "" && !isDebugDiagnostic(l));
  return normalisePaths(lines.map((l) => `${l}\n`).join(""), repo);
}

export function normalisePaths(text: string, repo: string): string {
  return text.split(repo).join("$REPO").split(homedir()).join("~");
}
