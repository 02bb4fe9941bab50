import { createHash } from "node:crypto";
import {
  COMMAND_SECONDS,
  coveredNodes,
  MaintenanceGroup,
  maintenanceGroups,
  REBOOT_SECONDS,
  renderMaintenanceBack,
  renderMaintenanceDrain,
  renderMaintenanceRun,
  renderMaintenanceUncordon,
  renderMaintenanceWait,
  renderMaintenanceRelease,
} from "../maintenance/render";
import type { NodeConfig } from "../config/schema";
import { maintenanceGroupStepSuffix, NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import { stdinScriptCommand } from "../shell/root";
import { rotationDone } from "./certificates";
import { guardOnce, NO_OP_UPDATE, ONE_SHOT_KEYS } from "./once";
import { restoreDone } from "./restore";
import { restoreAbandonedDone } from "./restore-abandoned";
import { endsWithAny, Facts, Operation, sshUserOf, Step } from "./step";
import { isCovered, renderCoveredRecord, renderNotCovered } from "./covered";
import { managedNodes } from "../decommission/nodes";
import { asRootScript } from "../decommission/render";

/** The step that records the nodes a maintenance covers (on the first server; its stdout is the `maintenanceCovered` fact). */
export const MAINTENANCE_RECORD = "maintenance-record";

/**
 * `maintenance` (docs/maintenance.md; scripts: maintenance/render.ts), once per `maintenance.id`:
 * servers one at a time, then agents in batches of upgrade.maxUnavailable; per group: drain (on
 * the watcher server), run on each node (command, reboot), wait for the new boot and back over
 * SSH (reboot only), uncordon. Each group waits for the one before; the first waits for every
 * other day-2 restart (rotations, a restore). One-shot like the rotations: every step records
 * the id it completed on its host (once.ts guardOnce), and a maintenance armed in the up that
 * creates the cluster records without running (the baseline: there is nothing to patch yet).
 */
export const maintenance: Operation = {
  name: "maintenance",
  description: "maintenance: servers one at a time, then agents in batches of upgrade.maxUnavailable: cordon and drain, run the command, reboot and wait for the new boot, uncordon; once per maintenance.id",
  owns: (name) => name === MAINTENANCE_RECORD || /^maintenance-[0-9]+-(drain|wait|uncordon)$/.test(name) || endsWithAny(NODE_LIFECYCLE_CHILDREN.maintenanceRun, NODE_LIFECYCLE_CHILDREN.maintenanceBack)(name),
  steps(config, plan) {
    const m = config.maintenance;
    if (!m) return [];
    const id = String(m.id);
    const steps: Step[] = [];
    // After a restore, or the chain converging one that was removed unfinished.
    let previous = restoreDone(config, restoreAbandonedDone(config, rotationDone(config, plan)));
    const covered = coveredNodes(config, m).map((n) => n.name);
    const first = managedNodes(config).filter((n) => n.role === "server")[0]!;
    /** The nodes of a group this maintenance covered (its record; all of them where not known). */
    const ofRecord = (g: MaintenanceGroup, facts: Facts): MaintenanceGroup => ({ ...g, nodes: g.nodes.filter((n) => isCovered(facts.maintenanceCovered, n.name)) });
    const step = (name: string, host: NodeConfig, summary: string, guard: string, script: (facts: Facts) => string, restartsK3s: boolean, timeoutSeconds: number, after: string[], covers: string[] = []): Step => {
      const s: Step = {
        name,
        operation: "maintenance",
        host,
        parent: "cluster",
        runs: "once",
        restartsK3s,
        summary,
        after,
        create: stdinScriptCommand(sshUserOf(config, host)),
        update: NO_OP_UPDATE,
        // The host records the id it completed; the id the cluster was created with runs nothing (once.ts).
        stdin: { needs: ["baseline", "maintenanceCovered"], render: (facts) => guardOnce(guard, id, script(facts), facts.baseline[ONE_SHOT_KEYS.maintenance]) },
        triggers: [id, ...covers],
        timeoutSeconds,
      };
      steps.push(s);
      return s;
    };
    // The nodes this id covers, recorded on the first server when it first runs, each with its
    // Node's UID: a node that joins later, or is removed and re-added under its name (a new Node,
    // a fresh host), with `maintenance` still set, is not maintained (operations/covered.ts).
    const record: Step = {
      name: MAINTENANCE_RECORD,
      operation: "maintenance",
      host: first,
      parent: "cluster",
      runs: "once",
      restartsK3s: false,
      summary: `on ${first.name}: record the nodes maintenance ${id} covers (${covered.join(", ")}); nodes that join later are not maintained; when maintenance ${id} leaves the config, uncordon what it cordoned and never uncordoned`,
      after: previous,
      create: stdinScriptCommand(sshUserOf(config, first)),
      // The update runs the script again: it records nothing more for this id and prints the
      // record with the Nodes' UIDs now, so a node removed and re-added since is not covered.
      update: stdinScriptCommand(sshUserOf(config, first)),
      stdin: renderCoveredRecord("maintenance", id, covered, first.name),
      // Removed, or replaced by a new id: no node stays cordoned for a maintenance no longer asked for.
      delete: asRootScript(sshUserOf(config, first), renderMaintenanceRelease(id)),
      onRemoval: renderMaintenanceRelease(id),
      triggers: [id],
      timeoutSeconds: 60,
    };
    steps.push(record);
    previous = [record.name];
    const what = [m.command ? `run ${m.command.join(" ")}` : "", m.reboot ? "reboot" : ""].filter(Boolean).join(", then ");
    for (const g of maintenanceGroups(config, m)) {
      const names = g.nodes.map((n) => n.name).join(", ");
      const group = (s: "drain" | "wait" | "uncordon") => maintenanceGroupStepSuffix(g.index, s);
      // A group step is named by its place, but adding or removing a node moves groups: its
      // trigger and its record on the watcher carry the nodes it covers, so a moved group runs
      // again and never skips on another's record; its scripts then skip every node already
      // maintained for this id (the node's annotation, maintenance/render.ts) or not covered.
      const covers = g.nodes.map((n) => n.name);
      const groupRecord = (s: "drain" | "wait" | "uncordon") => `maintenance-${createHash("sha256").update(covers.join(",")).digest("hex").slice(0, 12)}-${s}`;
      const drain = step(group("drain"), g.watcher, `group ${g.index} (${names}): cordon and drain, on ${g.watcher.name}`, groupRecord("drain"), (f) => renderMaintenanceDrain(config, m, ofRecord(g, f)), false, g.nodes.length * config.upgrade.drain.timeout, previous, covers);
      const perNode = (n: NodeConfig, what: string, script: () => string) => (f: Facts) => (isCovered(f.maintenanceCovered, n.name) ? script() : renderNotCovered("maintenance", n, what, id, f.maintenanceCovered ?? []));
      const runs = g.nodes.map((n) =>
        step(nodeLifecycleName(n.name, "maintenanceRun"), n, `${n.name}: ${what}`, "maintenance-run", perNode(n, "run", () => renderMaintenanceRun(m, n)), m.reboot, COMMAND_SECONDS, [drain.name]),
      );
      let last = runs.map((r) => r.name);
      if (m.reboot) {
        const wait = step(group("wait"), g.watcher, `group ${g.index}: wait until ${names} report${g.nodes.length === 1 ? "s" : ""} a new boot ID and Ready, on ${g.watcher.name}`, groupRecord("wait"), (f) => renderMaintenanceWait(config, m, ofRecord(g, f)), false, g.nodes.length * (config.upgrade.readyTimeout + REBOOT_SECONDS), last, covers);
        last = g.nodes.map((n) => step(nodeLifecycleName(n.name, "maintenanceBack"), n, `${n.name}: back after the reboot: answers SSH, K3s active`, "maintenance-back", perNode(n, "back", () => renderMaintenanceBack(m, n)), false, 300, [wait.name]).name);
      }
      const uncordon = step(group("uncordon"), g.watcher, `group ${g.index}: wait Ready, uncordon what this maintenance cordoned, on ${g.watcher.name}`, groupRecord("uncordon"), (f) => renderMaintenanceUncordon(config, m, ofRecord(g, f)), false, g.nodes.length * config.upgrade.readyTimeout, last, covers);
      previous = [uncordon.name];
    }
    return steps;
  },
};
