import type { NodeConfig } from "../config/schema";

/**
 * A remote command as a renderer gives it to its operation (decommission/render.ts teardowns,
 * decommission/rebuild.ts forget steps, rotation/render.ts rotations): the command inputs, the
 * host it runs on as `on`, and the names it waits for. Each renderer's type picks the fields it
 * always sets; its operation turns them into Steps.
 */
export interface HostCommand {
  /** The resource name without the `<stack>-` prefix. */
  name: string;
  /** The host it runs on (its connection). */
  on: NodeConfig;
  create?: string;
  update?: string;
  delete?: string;
  stdin?: string;
  triggers?: string[];
  dependsOn?: string[];
}
