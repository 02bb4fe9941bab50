import type { ClusterPlan } from "../plan/node";
import { joinShell, sh } from "../shell/sh";

/** The kubectl commands that set labels K3s may not set at registration (node-role.kubernetes.io/*). */
export function postRegistrationLabelCommand(plan: ClusterPlan): string | undefined {
  const lines = plan.nodes
    .filter((n) => Object.keys(n.postRegistrationLabels).length > 0 || n.removedLabels.length > 0)
    .map((n) => {
      // `key-` removes a label (kubectl only warns when it is absent).
      const labels = [...Object.entries(n.postRegistrationLabels).map(([k, v]) => `${k}=${v}`), ...n.removedLabels.map((k) => `${k}-`)];
      return sh`k3s kubectl label node ${n.node.name} --overwrite ${labels}`;
    });
  if (lines.length === 0) return undefined;
  const user = plan.nodes[0].sshUser;
  const script = joinShell(lines, " && ");
  return user === "root" ? script.text : sh`sudo -n sh -c ${script.text}`.text;
}
