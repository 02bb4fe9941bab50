import { Shell, sh } from "./sh";

/** Runs a command as root: directly for root, through non-interactive sudo otherwise. */
export function asRoot(user: string, command: Shell): Shell {
  return user === "root" ? command : sh`sudo -n ${command}`;
}

/** Runs the script given on stdin as root (no staging needed: lifecycle steps send scripts this way). */
export function stdinScriptCommand(user: string): string {
  return asRoot(user, sh`bash -s`).text;
}

/**
 * What a command sent a stdin it does not need runs at the end: reads the rest of stdin, so the
 * command never exits before the provider has written all of it. The command provider's SSH client
 * (golang.org/x/crypto/ssh session.go `stdin()`) copies stdin into the channel after the command
 * starts; once the remote side closes the channel a write returns io.EOF, and `session.Run` fails
 * with "EOF" (pulumi-command provider/pkg/provider/remote/commandOutputs.go) though the command
 * succeeded — at random under load for a short stdin, always for one larger than sshd's channel
 * window (OpenSSH CHAN_SES_WINDOW_DEFAULT, 2 MiB).
 */
export const DRAIN_STDIN = "cat >/dev/null";
