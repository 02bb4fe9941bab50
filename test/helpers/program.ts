import { createHash } from "node:crypto";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_GENERATED, mockId, mockState, SECRET_SIG, SPECIAL_SIG } from "./pulumi-mocks";
import { REPO } from "./samples";
import { isSecretKey } from "../../components/config/schema";

export interface ProgramResource {
  type: string;
  name: string;
  provider?: string;
  /** Inputs in wire form: secrets still wrapped, so a test can tell secret from plain. */
  rawInputs: Record<string, unknown>;
  /** The ID the real provider would give it (mockId). */
  id: string;
}

/**
 * The key the program derives from the mocked RandomPassword result (SHA-256, base64: 32 bytes),
 * computed here from the mock's input, not read from the program.
 */
export const GENERATED_KEY = createHash("sha256").update(MOCK_GENERATED.token).digest("base64");

/** Every secret value the mocks hand the program (tokens, keys): none may show up in plaintext or an ID. */
export const MOCK_SECRETS = [MOCK_GENERATED.token, GENERATED_KEY];

/** Paths in `value` where `needle` appears outside a secret wrapper. */
export function plainOccurrences(value: unknown, needle: string, path = ""): string[] {
  if (typeof value === "string") return value.includes(needle) ? [path || "."] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainOccurrences(v, needle, `${path}[${i}]`));
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SPECIAL_SIG] === SECRET_SIG) return [];
    return Object.entries(obj).flatMap(([k, v]) => plainOccurrences(v, needle, `${path}.${k}`));
  }
  return [];
}

/** Loads index.ts afresh under mocks with the given `k3s-platform:*` config (and steps' recorded `stdout`, by resource name). */
export function runProgram(config: Record<string, unknown>, stack = "dev", plaintextSecrets: string[] = [], stdout: Record<string, string> = {}) {
  const resources: ProgramResource[] = [];
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const state = mockState(args);
        // A step answering what it printed on the hosts (by resource name), e.g. the k3s-release step.
        if (stdout[args.name] !== undefined) state.stdout = stdout[args.name];
        const id = mockId(args, state);
        resources.push({ type: args.type, name: args.name, provider: args.provider, rawInputs: args.inputs, id });
        return { id, state };
      },
      call: (args) => args.inputs,
    },
    "k3s-platform",
    stack,
    false,
    // The organization the file backend reports (StackReference names are <organization>/<project>/<stack>).
    "organization",
  );
  // As the engine does: every value a string (objects as JSON), secure keys listed as secret.
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [`k3s-platform:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
    Object.keys(config).filter((k) => isSecretKey(k) && !plaintextSecrets.includes(k)).map((k) => `k3s-platform:${k}`),
  );
  const entry = join(REPO, "index.ts");
  delete require.cache[require.resolve(entry)];
  let stackExports: Record<string, unknown> | undefined;
  let error: unknown;
  try {
    stackExports = require(entry) as Record<string, unknown>;
  } catch (e) {
    error = e;
  }
  return { resources, stackExports, error };
}

/** Waits until the mocked engine has seen every registration. */
export async function settle(stackExports: Record<string, unknown> | undefined): Promise<void> {
  const outputs = Object.values(stackExports ?? {}).filter((v): v is pulumi.Output<unknown> => pulumi.Output.isInstance(v));
  await Promise.all(outputs.map((o) => new Promise((resolve) => o.apply(resolve))));
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}
