import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ResolvedConfig } from "../config/schema";
import { Connection } from "../node/component";
import { asRoot } from "../node/plan";
import { sh } from "../shell/sh";
import { NO_OP_UPDATE } from "../encryption/once";
import { TEARDOWN_CHILDREN, teardownPlans } from "./render";

/** Runs a generated script as root, given as one argument (delete has no stdin of its own). */
function asRootScript(user: string, script: string): string {
  return asRoot(user, sh`bash -c ${script}`).text;
}

/**
 * The teardown commands of every node entry that sets `decommission` (render.ts explains why
 * they carry no triggers and which order the engine deletes them in). Thin: wiring only.
 */
export function createTeardowns(
  name: string,
  config: ResolvedConfig,
  connectionOf: (node: ResolvedConfig["nodes"][number]) => Connection,
  parent: pulumi.Resource,
): command.remote.Command[] {
  const created: command.remote.Command[] = [];
  for (const t of teardownPlans(config)) {
    const nodeUser = t.node.ssh.user ?? config.ssh.user;
    const serverUser = t.drainServer.ssh.user ?? config.ssh.user;
    const uninstall = new command.remote.Command(
      `${name}-${t.node.name}-${TEARDOWN_CHILDREN.uninstall}`,
      {
        connection: connectionOf(t.node),
        create: asRootScript(nodeUser, t.armScript),
        update: NO_OP_UPDATE,
        delete: asRootScript(nodeUser, t.uninstallScript),
        addPreviousOutputInEnv: false,
      },
      { parent },
    );
    // Depends on the uninstall so the engine deletes (runs) it first: drain before uninstall.
    const drain = new command.remote.Command(
      `${name}-${t.node.name}-${TEARDOWN_CHILDREN.drain}`,
      {
        connection: connectionOf(t.drainServer),
        create: asRootScript(serverUser, t.armScript),
        update: NO_OP_UPDATE,
        delete: asRootScript(serverUser, t.drainScript),
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn: [uninstall] },
    );
    created.push(uninstall, drain);
  }
  return created;
}
