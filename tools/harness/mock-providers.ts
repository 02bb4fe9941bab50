import * as pulumi from "@pulumi/pulumi";

/**
 * What the mocked providers answer under \`pulumi.runtime.setMocks\`, shared by the unit tests
 * (test/helpers/pulumi-mocks.ts) and \`npm run bench\` (bench/graph.ts), so the two cannot drift
 * apart (they did: the bench's own copy still answered RandomBytes after the encryption key moved
 * to RandomPassword + RandomString, and the bench crashed hashing \`undefined\`).
 */

export const SAMPLE_KUBECONFIG = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EgREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`;

export const MOCK_GENERATED = { token: "generated-token-value", keyName: "k3y5uffx", bytes: "UkFORE9NLUJZVEVTLTMyLUJZVEVTLUxPTkctLS0tLS0hIQ==" };

/**
 * The resource ID the real provider gives (pulumi-random: RandomBytes' ID is its base64 value,
 * RandomString's its result, RandomPassword's "none" — REFERENCE.md, measured with the engine);
 * other resources get `<name>-id`. IDs are stored in plaintext, so tests scan them for secrets.
 */
export function mockId(args: pulumi.runtime.MockResourceArgs, state: Record<string, unknown>): string {
  if (args.type === "random:index/randomPassword:RandomPassword") return "none";
  if (args.type === "random:index/randomString:RandomString") return String(state.result);
  if (args.type === "random:index/randomBytes:RandomBytes") return String(state.base64);
  return `${args.name}-id`;
}

/** Outputs the mocked providers add to the echoed inputs, per resource type. */
export interface MockAnswer {
  /** Added to every resource of the type. */
  all?: Record<string, unknown>;
  /** Added (over `all`) to a resource whose name ends with the key; the first match wins. */
  bySuffix?: Record<string, Record<string, unknown>>;
}

/**
 * The outputs our program reads, as plain data, so a child process that cannot load TypeScript
 * helpers (test/helpers/cli-path-probe.js, the language host's path) answers exactly the same.
 */
export const MOCK_ANSWERS: Record<string, MockAnswer> = {
  "command:remote:Command": {
    all: { stdout: "", stderr: "" },
    bySuffix: { "-kubeconfig": { stdout: SAMPLE_KUBECONFIG }, "-verify": { stdout: '{"enabled":true,"mode":"custom"}' } },
  },
  "random:index/randomPassword:RandomPassword": { all: { result: MOCK_GENERATED.token } },
  "random:index/randomString:RandomString": { all: { result: MOCK_GENERATED.keyName } },
  "random:index/randomBytes:RandomBytes": { all: { base64: MOCK_GENERATED.bytes } },
  // A stack with no outputs yet (a first preview): the cluster's StackReference to itself.
  "pulumi:pulumi:StackReference": { all: { outputs: {}, secretOutputNames: [] } },
};

/** What the mocked providers answer: inputs echoed, plus the outputs our program reads (MOCK_ANSWERS). */
export function mockState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const answer = MOCK_ANSWERS[args.type];
  const bySuffix = Object.entries(answer?.bySuffix ?? {}).find(([suffix]) => args.name.endsWith(suffix))?.[1];
  return { ...args.inputs, ...answer?.all, ...bySuffix };
}
