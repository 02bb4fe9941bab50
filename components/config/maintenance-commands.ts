/**
 * The maintenance commands prod accepts (`maintenance.command`, docs/maintenance.md). A command runs
 * as root on every node the maintenance covers, so prod checks it against what is known safe
 * (the OS-patching commands of the distributions k3s-platform supports, each non-interactive),
 * not against known-bad patterns. Outside prod any single command (argv, never a shell line) runs.
 * Exact argv match: an extra argument is another command. Pure.
 */
export const MAINTENANCE_COMMANDS: ReadonlyArray<{ argv: readonly string[]; what: string }> = [
  { argv: ["unattended-upgrade"], what: "Debian/Ubuntu: install pending updates as unattended-upgrades is configured" },
  { argv: ["apt-get", "-y", "upgrade"], what: "Debian/Ubuntu: upgrade installed packages (from the package lists the host has)" },
  { argv: ["apt-get", "-y", "dist-upgrade"], what: "Debian/Ubuntu: upgrade, adding or removing packages as dependencies need" },
  { argv: ["dnf", "-y", "upgrade"], what: "RHEL family: upgrade installed packages" },
  { argv: ["dnf", "-y", "upgrade", "--security"], what: "RHEL family: security updates only" },
  { argv: ["dnf", "-y", "upgrade", "--refresh"], what: "RHEL family: refresh metadata, then upgrade" },
  { argv: ["yum", "-y", "update"], what: "older RHEL family: upgrade installed packages" },
  { argv: ["zypper", "--non-interactive", "patch"], what: "SUSE: install needed patches" },
  { argv: ["zypper", "--non-interactive", "update"], what: "SUSE: upgrade installed packages" },
];

/** Why prod refuses `argv`, or undefined when it is one of MAINTENANCE_COMMANDS. */
export function maintenanceCommandProblem(argv: readonly string[]): string | undefined {
  const known = MAINTENANCE_COMMANDS.some((c) => c.argv.length === argv.length && c.argv.every((a, i) => a === argv[i]));
  if (known) return undefined;
  const list = MAINTENANCE_COMMANDS.map((c) => `[${c.argv.join(", ")}]`).join(", ");
  return `prod runs only a known OS-patching command here (it runs as root on every node covered): one of ${list}; other commands run outside prod`;
}
