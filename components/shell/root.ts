import { Shell, sh } from "./sh";

/** Runs a command as root: directly for root, through non-interactive sudo otherwise. */
export function asRoot(user: string, command: Shell): Shell {
  return user === "root" ? command : sh`sudo -n ${command}`;
}

/** Runs the script given on stdin as root (no staging needed: lifecycle steps send scripts this way). */
export function stdinScriptCommand(user: string): string {
  return asRoot(user, sh`bash -s`).text;
}
