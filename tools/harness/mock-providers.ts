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

/** What the mocked providers answer: inputs echoed, plus the outputs our program reads. */
export function mockState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const state: Record<string, unknown> = { ...args.inputs };
  if (args.type === "command:remote:Command") {
    state.stdout = args.name.endsWith("-kubeconfig") ? SAMPLE_KUBECONFIG : args.name.endsWith("-verify") ? '{"enabled":true,"mode":"custom"}' : "";
    state.stderr = "";
  }
  if (args.type === "random:index/randomPassword:RandomPassword") state.result = MOCK_GENERATED.token;
  if (args.type === "random:index/randomString:RandomString") state.result = MOCK_GENERATED.keyName;
  if (args.type === "random:index/randomBytes:RandomBytes") state.base64 = MOCK_GENERATED.bytes;
  return state;
}

