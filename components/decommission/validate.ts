import { StackConfig } from "../config/schema";

type Report = (path: ReadonlyArray<string | number>, message: string) => void;

/**
 * Refusals for `decommission` (before any host is touched): the last server, more servers at once
 * than etcd can lose (floor((n-1)/2) of n: a member stopped before K3s removed it still counts
 * towards quorum), and an even number of servers left in prod.
 */
export function decommissionChecks(config: StackConfig, report: Report): void {
  const servers = config.nodes.map((n, i) => ({ n, i })).filter(({ n }) => n.role === "server");
  const leaving = servers.filter(({ n }) => n.decommission === true);
  if (leaving.length === 0) return;
  const staying = servers.length - leaving.length;
  const tolerated = Math.floor((servers.length - 1) / 2);
  for (const { n, i } of leaving) {
    const path = ["nodes", i, "decommission"];
    if (staying === 0) {
      report(path, `decommissioning ${n.name} leaves no server; a cluster needs at least one (remove the whole stack with pulumi destroy instead)`);
    } else if (config.k3s.datastore.type === "etcd" && leaving.length > tolerated) {
      report(
        path,
        `${leaving.length} of ${servers.length} servers are decommissioned at once; etcd keeps quorum with at most ${tolerated} leaving together: decommission one, remove it, then the next`,
      );
    } else if (config.environment === "prod" && staying % 2 === 0) {
      report(path, `decommissioning ${n.name} leaves ${staying} servers in prod; keep an odd number so etcd keeps quorum (add a server first)`);
    }
  }
}
