import { SshTarget, StepResult } from "./ssh";

/**
 * A model of how `pulumi up` drives `command:remote:Command` resources, for the e2e suite: the
 * exact commands run over real SSH, in the order and under the conditions the engine and the
 * provider give them. Sources:
 *  - pulumi-command provider/pkg/provider/remote/commandController.go (v1.x): Create runs
 *    `create`; Update runs `update`, or `create` when `update` is unset; Delete runs the `delete`
 *    stored in state (with the stored connection), nothing when unset.
 *  - the engine (REFERENCE "The Pulumi engine here", measured with pulumi 3.260): a `triggers`
 *    change replaces the resource, create-before-delete — the new one's `create`, then the old
 *    one's `delete`; any other input change is an Update; a resource the program no longer
 *    declares is deleted after every create and update, dependents before their dependencies.
 *  - a failed create leaves nothing in state (the next `up` creates again); a failed update keeps
 *    the old state; a failed delete keeps the resource (the next `up` deletes again). The run
 *    stops at the first failure and reports it, as `pulumi up` does.
 */

export interface CommandResource {
  name: string;
  target: SshTarget;
  /** What the provider stores of `connection` (host, port, user, …); a change is an Update. */
  connection: string;
  create?: string;
  update?: string;
  delete?: string;
  stdin?: string;
  triggers?: readonly string[];
  dependsOn?: readonly string[];
  /**
   * A stdin rendered from other resources' outputs (an Output input in the program): resolved
   * when the resource's turn comes, from the `stdout` state holds then (dependencies first).
   */
  stdinFrom?: (stdoutOf: (name: string) => string | undefined) => string;
  /** Output: the stdout of the last create or update (the provider keeps it in state; a same step keeps it). */
  stdout?: string;
}

/** A program step that is not a command resource (the node steps the K3sNode harness runs). */
export interface ProgramStep {
  name: string;
  run: () => Promise<void>;
}

export type Declared = CommandResource | ProgramStep;
const isStep = (d: Declared): d is ProgramStep => "run" in d;

export type Operation = "create" | "update" | "replace" | "delete" | "same";

export interface StepRecord {
  name: string;
  op: Operation;
  /** Which command ran (`create`, `update`, `delete`, `create+delete` for a replacement). */
  ran: string[];
  stdout: string;
  started: number;
  finished: number;
}

export class UpError extends Error {
  constructor(readonly resource: string, readonly op: string, readonly result: StepResult, readonly steps: StepRecord[]) {
    super(`${resource}: ${op} failed with status ${result.status}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

const same = (a: readonly string[] = [], b: readonly string[] = []) => a.length === b.length && a.every((v, i) => v === b[i]);

const INPUTS = ["connection", "create", "update", "delete", "stdin"] as const;

export class CommandProviderModel {
  /** Resources in state, in the order they were created (the engine's state is ordered too). */
  readonly state = new Map<string, CommandResource>();

  /** One `pulumi up` over `declared` (in program order, dependencies first). */
  async up(program: readonly Declared[]): Promise<StepRecord[]> {
    const declared = program.filter((d): d is CommandResource => !isStep(d));
    const steps: StepRecord[] = [];
    const run = async (r: CommandResource, which: "create" | "update" | "delete", op: string): Promise<string> => {
      const command = which === "update" ? r.update ?? r.create : r[which];
      if (command === undefined) return "";
      const result = await r.target.run(command, r.stdin);
      if (result.status !== 0) throw new UpError(r.name, op, result, steps);
      return result.stdout;
    };
    for (const d of program) {
      if (isStep(d)) {
        await d.run();
        continue;
      }
      const r: CommandResource = d.stdinFrom ? { ...d, stdin: d.stdinFrom((name) => this.state.get(name)?.stdout) } : d;
      const old = this.state.get(r.name);
      const started = Date.now();
      if (!old) {
        const stdout = await run(r, "create", "create");
        this.state.set(r.name, { ...r, stdout });
        steps.push({ name: r.name, op: "create", ran: r.create ? ["create"] : [], stdout, started, finished: Date.now() });
      } else if (!same(old.triggers, r.triggers)) {
        const created = await run(r, "create", "replace (create)");
        const deleted = await run(old, "delete", "replace (delete)");
        this.state.set(r.name, { ...r, stdout: created });
        steps.push({ name: r.name, op: "replace", ran: ["create", ...(old.delete ? ["delete"] : [])], stdout: created + deleted, started, finished: Date.now() });
      } else if (INPUTS.some((k) => old[k] !== r[k])) {
        const stdout = await run(r, "update", "update");
        this.state.set(r.name, { ...r, stdout });
        steps.push({ name: r.name, op: "update", ran: [r.update ? "update" : "create"], stdout, started, finished: Date.now() });
      } else {
        this.state.set(r.name, { ...r, stdout: old.stdout });
        steps.push({ name: r.name, op: "same", ran: [], stdout: "", started, finished: started });
      }
    }
    // Removed resources: dependents first (reverse creation order respects every dependsOn).
    const names = new Set(declared.map((r) => r.name));
    const removed = [...this.state.values()].filter((r) => !names.has(r.name));
    const order: CommandResource[] = [];
    const visit = (r: CommandResource) => {
      if (order.includes(r)) return;
      for (const dependent of removed.filter((d) => d.dependsOn?.includes(r.name))) visit(dependent);
      order.push(r);
    };
    for (const r of [...removed].reverse()) visit(r);
    for (const r of order) {
      const started = Date.now();
      const stdout = await run(r, "delete", "delete");
      this.state.delete(r.name);
      steps.push({ name: r.name, op: "delete", ran: r.delete ? ["delete"] : [], stdout, started, finished: Date.now() });
    }
    return steps;
  }
}
