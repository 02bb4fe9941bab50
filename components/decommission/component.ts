import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import { childName } from "../names";
import type { Connection } from "../ssh/connection";
import { customTimeouts, stepBounds } from "../k3s/timeouts";
import { teardownCommands } from "./render";

/**
 * The teardown commands of every node entry that sets `decommission` (render.ts explains why they
 * carry no triggers and in which order the engine deletes them). Thin: wiring only.
 */
export function createTeardowns(
  name: string,
  config: ResolvedConfig,
  connectionOf: (node: NodeConfig) => Connection,
  parent: pulumi.Resource,
): command.remote.Command[] {
  const created = new Map<string, command.remote.Command>();
  for (const t of teardownCommands(config)) {
    created.set(
      t.name,
      new command.remote.Command(
        childName(name, t.name),
        { connection: connectionOf(t.on), create: t.create, update: t.update, delete: t.delete, addPreviousOutputInEnv: false },
        { parent, dependsOn: t.dependsOn.map((d) => created.get(d)!), customTimeouts: customTimeouts(stepBounds().decommission) },
      ),
    );
  }
  return [...created.values()];
}
