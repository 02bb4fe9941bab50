import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { parse } from "yaml";
import { AUTHENTICATION_CONFIG_FILE, authenticationApiVersion } from "../../../components/authentication/render";
import type { StackInput } from "../../../components/config/schema";
import { PATHS } from "../../../components/k3s/paths";
import { planNode } from "../../../components/plan/node";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { variant } from "../../helpers/samples";

type Jwt = NonNullable<NonNullable<NonNullable<StackInput["k3s"]>["apiServer"]>["authentication"]>["jwt"][number];

/** A throw-away self-signed CA, PEM (openssl, as an operator would make one). */
const CA_PEM = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=oidc-test-ca", "-days", "1"], { encoding: "utf8" }).stdout;

const JWT: Jwt = {
  issuer: { url: "https://login.example.com/realms/k8s", audiences: ["kubernetes"], certificateAuthority: CA_PEM },
  claimMappings: { username: { claim: "email", prefix: "oidc:" }, groups: { claim: "groups", prefix: "oidc:" } },
};

const withJwt = (env: "dev" | "prod", jwt: Jwt[], edit: (r: StackInput) => void = () => {}) =>
  variant(env, (r) => {
    r.k3s!.apiServer = { ...r.k3s!.apiServer, authentication: { jwt } };
    edit(r);
  });
const issuesOf = (raw: StackInput) => {
  const r = parseStackConfig(raw);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
};
const has = (issues: string[], start: string, pattern: RegExp) =>
  assert.ok(issues.some((i) => i.startsWith(start) && pattern.test(i)), `no issue at ${start} matching ${pattern}:\n${issues.join("\n")}`);

describe("API server OIDC through the structured AuthenticationConfiguration (issue 27)", () => {
  it("the test CA is a certificate (so the checks below test something)", () => assert.match(CA_PEM, /^-----BEGIN CERTIFICATE-----/));

  it("renders the file and its kube-apiserver-arg on servers only; agents are untouched", () => {
    const config = loadStackConfig(withJwt("dev", [JWT]));
    const server = planNode(config, config.nodes[0]!);
    const file = server.files.find((f) => f.name === AUTHENTICATION_CONFIG_FILE)!;
    assert.equal(file.target, PATHS.authenticationConfig);
    assert.equal(file.mode, "0600");
    const doc = parse(file.content) as Record<string, unknown>;
    assert.deepEqual(doc, {
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AuthenticationConfiguration",
      jwt: [{ issuer: { url: JWT.issuer.url, audiences: ["kubernetes"], certificateAuthority: CA_PEM }, claimMappings: JWT.claimMappings }],
    });
    const flags = parse(server.files.find((f) => f.name === "config.yaml")!.content) as Record<string, string[]>;
    assert.ok(flags["kube-apiserver-arg"]!.includes(`authentication-config=${PATHS.authenticationConfig}`));
    const agent = planNode(config, config.nodes[1]!);
    const before = loadStackConfig(variant("dev", () => {}));
    assert.deepEqual(agent.files, planNode(before, before.nodes[1]!).files);
  });

  it("apiVersion follows the pinned release: v1beta1 through v1.33, v1 from v1.34 (KEP-3331 stable)", () => {
    assert.equal(authenticationApiVersion({ version: "v1.30.0+k3s1" }), "apiserver.config.k8s.io/v1beta1");
    assert.equal(authenticationApiVersion({ version: "v1.33.5+k3s1" }), "apiserver.config.k8s.io/v1beta1");
    assert.equal(authenticationApiVersion({ version: "v1.34.0+k3s1" }), "apiserver.config.k8s.io/v1");
    assert.equal(authenticationApiVersion({ channel: "v1.33" }), "apiserver.config.k8s.io/v1beta1");
    assert.equal(authenticationApiVersion({ channel: "stable" }), "apiserver.config.k8s.io/v1");
  });

  it("several audiences render audienceMatchPolicy MatchAny (the API server requires it)", () => {
    const config = loadStackConfig(withJwt("dev", [{ ...JWT, issuer: { url: JWT.issuer.url, audiences: ["kubernetes", "kubectl"] } }]));
    const doc = parse(planNode(config, config.nodes[0]!).files.find((f) => f.name === AUTHENTICATION_CONFIG_FILE)!.content) as { jwt: Array<{ issuer: Record<string, unknown> }> };
    assert.equal(doc.jwt[0]!.issuer.audienceMatchPolicy, "MatchAny");
  });

  it("refuses what the API server refuses, naming the path", () => {
    const at = "k3s-platform:k3s.apiServer.authentication.jwt";
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, url: "http://login.example.com" } }])), `${at}[0].issuer.url`, /must be https/);
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, url: "https://login.example.com/?x=1" } }])), `${at}[0].issuer.url`, /without user info, query or fragment/);
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, url: "https://kubernetes.default.svc.cluster.local" } }])), `${at}[0].issuer.url`, /service account tokens/);
    has(issuesOf(withJwt("dev", [JWT, JWT])), `${at}[1].issuer.url`, /also jwt\[0\]'s issuer/);
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, audiences: [] } }])), `${at}[0].issuer.audiences`, /at least one audience/);
    has(issuesOf(withJwt("dev", [{ ...JWT, claimMappings: { username: { claim: "email" } as Jwt["claimMappings"]["username"] } }])), `${at}[0].claimMappings.username.prefix`, /./);
    has(issuesOf(withJwt("dev", [{ ...JWT, claimMappings: { username: { claim: "sub", prefix: "system:oidc:" } } }])), `${at}[0].claimMappings.username.prefix`, /must not start with system:/);
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, certificateAuthority: "not a pem" } }])), `${at}[0].issuer.certificateAuthority`, /not PEM/);
    const withKey = `${CA_PEM}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`;
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, certificateAuthority: withKey } }])), `${at}[0].issuer.certificateAuthority`, /PRIVATE KEY block: only certificates/);
    const broken = CA_PEM.replace(/\n[A-Za-z0-9+/]{10}/, "\n!!!!!!!!!!");
    has(issuesOf(withJwt("dev", [{ ...JWT, issuer: { ...JWT.issuer, certificateAuthority: broken } }])), `${at}[0].issuer.certificateAuthority`, /does not parse/);
  });

  it("--oidc-* pass-through flags and a hand-written authentication-config cannot be set beside it", () => {
    const oidc = issuesOf(withJwt("dev", [JWT], (r) => (r.k3s!.extraServerConfig = { "kube-apiserver-arg": ["oidc-issuer-url=https://other.example.com"] })));
    has(oidc, 'k3s-platform:k3s.extraServerConfig["kube-apiserver-arg"][0]', /--oidc-issuer-url cannot be set with k3s.apiServer.authentication/);
    const file = issuesOf(variant("dev", (r) => (r.k3s!.extraServerConfig = { "kube-apiserver-arg": ["authentication-config=/etc/auth.yaml"] })));
    has(file, 'k3s-platform:k3s.extraServerConfig["kube-apiserver-arg"][0]', /"authentication-config" is rendered by k3s-platform; set k3s.apiServer.authentication instead/);
  });

  it("prod refuses a provider without an exception naming it and its prefixes (as oidc-issuer-url on the allowlist); with one it renders", () => {
    const refused = issuesOf(withJwt("prod", [{ ...JWT, claimMappings: { username: { claim: "email", prefix: "" }, groups: { claim: "groups", prefix: "" } } }]));
    const line = refused.find((i) => i.startsWith("k3s-platform:k3s.apiServer.authentication.jwt[0]:"));
    assert.ok(line, refused.join("\n"));
    assert.match(line!, /becomes an identity provider of the API server: whoever controls it logs in as "<email>" with groups "<groups>"; no username prefix: .*; no groups prefix: its groups \(claim groups\) can claim system:masters/);
    const setting = /setting: "([^"]+)"/.exec(line!)![1]!;
    assert.match(setting, /^apiServer\.authentication\.jwt:https:\/\/login\.example\.com\/realms\/k8s#[0-9a-f]{16}$/);
    const kept = withJwt("prod", [JWT], (r) => {
      const s = /setting: "([^"]+)"/.exec(issuesOf(withJwt("prod", [JWT])).find((i) => i.includes("identity provider"))!)![1]!;
      (r.k3s!.exceptions ??= []).push({ setting: s, reason: "the company IdP, reviewed by security in SEC-42" });
    });
    assert.deepEqual(issuesOf(kept), []);
    // A new CA (rotation) keeps the exception: it is not part of what was reviewed.
    const rotated = structuredClone(kept);
    rotated.k3s!.apiServer!.authentication!.jwt[0]!.issuer.certificateAuthority = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=rotated", "-days", "1"], { encoding: "utf8" }).stdout;
    assert.deepEqual(issuesOf(rotated), []);
  });
});
