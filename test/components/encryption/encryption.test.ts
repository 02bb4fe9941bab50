import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { K3sCluster } from "../../../components/cluster/component";
import { loadStackConfig } from "../../../components/stack/load";
import {
  ENABLE_PENDING_MARKER,
  encryptionServerFlags,
  parseEncryptionStatus,
  renderEncryptionConfig,
  renderRestartScript,
  renderVerifyScript,
  rotationPhases,
  supportsRotateKeys,
} from "../../../components/encryption/render";
import { ENCRYPTION_WRITE_RECORD, renderKeepKeysWrite } from "../../../components/encryption/keep-keys";
import { guardOnce, NO_OP_UPDATE, ONCE_DIR } from "../../../components/operations/once";
import { planNode } from "../../../components/plan/node";
import { installMocks } from "../../helpers/pulumi-mocks";
import { REPO, sampleConfig, variant } from "../../helpers/samples";
import { innerCommand } from "../../helpers/report";

const STUBS = join(REPO, "test", "helpers", "stubs");
const KEY = "c2VjcmV0Ym94LWtleS1ieXRlcy0zMi1ieXRlcy0wMTIzNDU=";

function bash(script: string, root: string, log: string) {
  const r = spawnSync("bash", ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe("secrets encryption", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3s-platform-enc-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("server flags", () => {
    it("K3s-managed: secrets-encryption on, provider only when not the default", () => {
      const aescbc = loadStackConfig(variant("dev", (r) => (r.encryption = { enabled: true })));
      assert.deepEqual(encryptionServerFlags(aescbc), { "secrets-encryption": true });
      const secretbox = loadStackConfig(variant("dev", (r) => {
        r.k3s!.version = "v1.31.8+k3s1"; // the first v1.31 release with secrets-encryption-provider
        r.encryption = { enabled: true, provider: "secretbox" };
      }));
      assert.deepEqual(encryptionServerFlags(secretbox), { "secrets-encryption": true, "secrets-encryption-provider": "secretbox" });
      assert.deepEqual(encryptionServerFlags(sampleConfig("dev")), {}, "off by default outside CIS");
    });

    it("custom: K3s' own encryption off, our config file passed to the API server with auto-reload", () => {
      const flags = encryptionServerFlags(sampleConfig("prod"));
      assert.equal(flags["secrets-encryption"], false);
      assert.deepEqual(flags["kube-apiserver-arg"], [
        "encryption-provider-config=/etc/rancher/k3s/encryption-config.yaml",
        "encryption-provider-config-automatic-reload=true",
      ]);
    });

    it("CIS without encryption is rejected at encryption.enabled", () => {
      const raw = variant("prod", (r) => (r.encryption = { enabled: false }));
      assert.throws(() => loadStackConfig(raw), /k3s-platform:encryption\.enabled: CIS hardening requires/);
    });

    it("a kms provider needs a kms plugin", () => {
      const raw = variant("prod", (r) => (r.encryption = { mode: "custom", custom: { resources: [{ resources: ["secrets"], providers: ["kms", "identity"] }] } }));
      assert.throws(() => loadStackConfig(raw), /k3s-platform:encryption\.custom\.kms/);
    });
  });

  describe("EncryptionConfiguration", () => {
    it("keeps provider order, opts events out, and writes keys and KMS v2", () => {
      const config = loadStackConfig(
        variant("prod", (r) => {
          r.encryption = {
            mode: "custom",
            custom: {
              resources: [
                { resources: ["events"], providers: ["identity"] },
                { resources: ["secrets", "*.apps"], providers: ["kms", "secretbox", "identity"] },
              ],
              kms: { name: "vault", endpoint: "unix:///run/kms/vault.sock" },
            },
          };
        }),
      );
      const doc = parse(renderEncryptionConfig(config.encryption, { secretbox: [{ name: "k1", secret: KEY }] })) as {
        kind: string;
        resources: Array<{ resources: string[]; providers: Array<Record<string, unknown>> }>;
      };
      assert.equal(doc.kind, "EncryptionConfiguration");
      assert.deepEqual(doc.resources[0], { resources: ["events"], providers: [{ identity: {} }] });
      assert.deepEqual(doc.resources[1]!.providers.map((p) => Object.keys(p)[0]), ["kms", "secretbox", "identity"]);
      assert.deepEqual(doc.resources[1]!.providers[0], { kms: { apiVersion: "v2", name: "vault", endpoint: "unix:///run/kms/vault.sock", timeout: "3s" } });
      assert.deepEqual(doc.resources[1]!.providers[1], { secretbox: { keys: [{ name: "k1", secret: KEY }] } });
    });

    it("refuses to render a keyed provider without a key", () => {
      assert.throws(() => renderEncryptionConfig(sampleConfig("prod").encryption, {}), /no secretbox key/);
    });

    it("is a secret file on servers only, never staged", () => {
      const config = sampleConfig("prod");
      const server = planNode(config, config.nodes[0]!);
      assert.ok(server.secretFiles.some((f) => f.name === "encryption-config"));
      assert.ok(!server.files.some((f) => f.content.includes("secretbox-key")));
      assert.ok(!planNode(config, config.nodes[3]!).secretFiles.some((f) => f.name === "encryption-config"));
    });
  });

  describe("rotation", () => {
    it("knows which releases have rotate-keys", () => {
      const cases: Array<[string, boolean]> = [
        ["v1.29.9+k3s1", false], ["v1.30.4+k3s1", false], ["v1.30.5+k3s1", true],
        ["v1.31.0+k3s1", false], ["v1.31.1+k3s1", true], ["v1.32.0+k3s1", true],
      ];
      for (const [v, expected] of cases) assert.equal(supportsRotateKeys(v), expected, v);
    });

    it("uses rotate-keys on current releases and prepare/rotate/reencrypt on older ones", () => {
      const current = loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: true, rotation: "2026-11" })));
      assert.deepEqual(rotationPhases(current).map((p) => p.name), ["rotate-keys"]);
      const old = loadStackConfig(variant("staging", (r) => {
        r.k3s!.version = "v1.30.4+k3s1";
        r.encryption = { enabled: true, rotation: 3 };
      }));
      assert.deepEqual(rotationPhases(old).map((p) => p.name), ["prepare", "rotate", "reencrypt"]);
      assert.deepEqual(rotationPhases(sampleConfig("staging")), [], "no rotation requested");
      assert.deepEqual(rotationPhases(sampleConfig("prod")).map((p) => p.name), ["reencrypt"], "custom mode rewrites secrets");
    });

    it("rotate-keys runs and waits for reencrypt_finished (stubbed k3s)", () => {
      const config = loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: true, rotation: 1 })));
      const root = mkdtempSync(join(scratch, "rot-"));
      mkdirSync(join(root, "encryption"));
      writeFileSync(join(root, "encryption/status"), "Enabled\n");
      const log = join(root, "log");
      const res = bash(rotationPhases(config)[0]!.script, root, log);
      assert.equal(res.status, 0, res.err);
      assert.match(readFileSync(log, "utf8"), /k3s secrets-encrypt rotate-keys/);
      assert.equal(readFileSync(join(root, "encryption/stage"), "utf8").trim(), "reencrypt_finished");
    });
  });

  describe("verify", () => {
    const staging = () => sampleConfig("staging");

    it("passes and prints JSON when encryption is on", () => {
      const root = mkdtempSync(join(scratch, "ver-"));
      mkdirSync(join(root, "encryption"));
      writeFileSync(join(root, "encryption/status"), "Enabled\n");
      const res = bash(renderVerifyScript(staging()), root, join(root, "log"));
      assert.equal(res.status, 0, res.err);
      assert.deepEqual(parseEncryptionStatus(res.out, "k3s"), { mode: "k3s", enabled: true, stage: "start", activeKey: "aescbckey-1", hashesMatch: true });
    });

    it("fails the update when encryption is off", () => {
      const root = mkdtempSync(join(scratch, "ver-off-"));
      const res = bash(renderVerifyScript(staging()), root, join(root, "log"));
      assert.notEqual(res.status, 0);
      assert.match(res.err, /secrets encryption is not enabled/);
    });

    it("custom mode checks the deployed file's hash", () => {
      const prod = sampleConfig("prod");
      const ok = renderVerifyScript(prod, "0".repeat(64));
      assert.match(ok, /sha256sum \/etc\/rancher\/k3s\/encryption-config\.yaml/);
      assert.match(ok, new RegExp("0{64}"));
    });
  });

  it("enabling on a running cluster: enable before the restart, reencrypt at verify", () => {
    const config = sampleConfig("staging");
    const plan = planNode(config, config.nodes[0]!);
    const apply = plan.files.find((f) => f.name === "apply.sh")!.content;
    const snippetStart = apply.indexOf("# Secrets encryption on a running cluster");
    // Up to the line that runs the install script (the script's text from there on is the install).
    const installLine = apply.lastIndexOf("\n", apply.indexOf('bash "$STAGING/install-k3s.sh"'));
    assert.ok(snippetStart > 0 && snippetStart < installLine, "enable runs before the restart");
    // Up to the upgrade concern's hook after it (the cordon and drain before a restart, issue 26).
    const drainHook = apply.indexOf('\nCORDON_FOR=""', snippetStart);
    assert.ok(drainHook > snippetStart && drainHook < installLine, "the drain hook follows, before the install");
    const snippet = apply.slice(snippetStart, drainHook);

    const root = mkdtempSync(join(scratch, "enable-"));
    mkdirSync(join(root, "run/active"), { recursive: true });
    writeFileSync(join(root, "run/active/k3s"), "");
    const log = join(root, "log");
    const first = bash(`set -euo pipefail\nROOT="$K3S_PLATFORM_ROOT"\n${snippet}`, root, log);
    assert.equal(first.status, 0, first.err);
    assert.match(readFileSync(log, "utf8"), /secrets-encrypt enable/);
    const marker = join(root, ENABLE_PENDING_MARKER);
    assert.equal(readFileSync(marker, "utf8"), "");

    // Once enabled, the snippet does nothing: a second apply does not enable again.
    writeFileSync(log, "");
    assert.equal(bash(`set -euo pipefail\nROOT="$K3S_PLATFORM_ROOT"\n${snippet}`, root, log).status, 0);
    assert.equal(readFileSync(log, "utf8"), "");
  });

  describe("keys survive destroy + up (issue 16.2): the host-side write keeps deployed keys", () => {
    const enc = () => sampleConfig("prod").encryption;
    const target = "/etc/rancher/k3s/encryption-config.yaml";
    const write = (root: string, rendered: string) =>
      spawnSync("sh", ["-c", renderKeepKeysWrite(target, "0600")], { input: rendered, encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root } });
    const keysOf = (text: string, provider: string) =>
      (parse(text) as { resources: Array<{ providers: Array<Record<string, { keys?: Array<{ name: string; secret: string }> }>> }> }).resources
        .flatMap((g) => g.providers.map((p) => p[provider]?.keys))
        .filter((k): k is Array<{ name: string; secret: string }> => !!k);
    const sha = (t: string) => createHash("sha256").update(t).digest("hex");

    it("first write: the rendered file as is, and a record of what was rendered and written", () => {
      const root = mkdtempSync(join(scratch, "keep-"));
      const rendered = renderEncryptionConfig(enc(), { secretbox: [{ name: "secretbox-aaaa", secret: KEY }] });
      const r = write(root, rendered);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(root, target), "utf8"), rendered);
      assert.equal(readFileSync(join(root, ENCRYPTION_WRITE_RECORD), "utf8"), `rendered ${sha(rendered)}\nwritten ${sha(rendered)}\n`);
    });

    // Hostile names and secrets: quoted by the YAML renderer, compared unquoted by the parser.
    const names = ["secretbox-aaaa", "key: with colon", "it's", '"q"', "#hash", "- dash", "k".repeat(200)];
    for (const oldName of names) {
      it(`a regenerated key goes first, the deployed one (${JSON.stringify(oldName.slice(0, 20))}) stays readable, repeated writes are stable`, () => {
        const root = mkdtempSync(join(scratch, "keep-"));
        const old = { name: oldName, secret: KEY };
        const fresh = { name: "secretbox-bbbb", secret: "bmV3LWtleS0zMi1ieXRlcy0wMTIzNDU2Nzg5MDEyMzQ1Ng==" };
        assert.equal(write(root, renderEncryptionConfig(enc(), { secretbox: [old] })).status, 0);
        const rendered = renderEncryptionConfig(enc(), { secretbox: [fresh] });
        for (let i = 0; i < 2; i++) {
          const r = write(root, rendered);
          assert.equal(r.status, 0, r.stderr);
          const text = readFileSync(join(root, target), "utf8");
          for (const keys of keysOf(text, "secretbox")) assert.deepEqual(keys, [fresh, old]);
          assert.deepEqual(keysOf(text, "identity"), []);
          assert.equal(readFileSync(join(root, ENCRYPTION_WRITE_RECORD), "utf8"), `rendered ${sha(rendered)}\nwritten ${sha(text)}\n`);
        }
      });
    }

    it("a key name reused with another secret stops the write and leaves the file alone", () => {
      const root = mkdtempSync(join(scratch, "keep-"));
      const first = renderEncryptionConfig(enc(), { secretbox: [{ name: "k1", secret: KEY }] });
      write(root, first);
      const r = write(root, renderEncryptionConfig(enc(), { secretbox: [{ name: "k1", secret: "b3RoZXIta2V5LTMyLWJ5dGVzLTAxMjM0NTY3ODkwMTIzNA==" }] }));
      assert.equal(r.status, 3);
      assert.match(r.stderr, /key k1 of secretbox is deployed with another secret/);
      assert.equal(readFileSync(join(root, target), "utf8"), first);
    });

    it("the secret write step uses it; no key in its command line", () => {
      const config = sampleConfig("prod");
      const plan = planNode(config, config.nodes[0]!);
      assert.ok(plan.secretFiles.some((f) => f.name === "encryption-config" && f.writeScript));
      const cmd = plan.commands.secrets;
      assert.match(innerCommand(cmd) ?? "", /^sudo -n sh -c /);
      assert.ok(cmd.includes("phase=2"));
      assert.ok(!cmd.includes(KEY));
    });
  });

  describe("guardOnce: a one-shot step runs once per trigger value on a host", () => {
    const run = (root: string, value: string, log: string) =>
      spawnSync("bash", ["-s"], { input: guardOnce("encryption-rotation-step-1", value, `echo ran >>${JSON.stringify(log)}`), encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root } });
    for (const value of ["1", "2026-11", "it's $(x) `y`", "a\nb"]) {
      it(`value ${JSON.stringify(value)}: runs, then skips the same value (destroy + up), runs again for a new one`, () => {
        const root = mkdtempSync(join(scratch, "once-"));
        const log = join(root, "log");
        assert.equal(run(root, value, log).status, 0);
        const again = run(root, value, log);
        assert.equal(again.status, 0, again.stderr);
        assert.match(again.stdout, /already done/);
        assert.equal(readFileSync(log, "utf8"), "ran\n");
        assert.equal(run(root, `${value}-next`, log).status, 0);
        assert.equal(readFileSync(log, "utf8"), "ran\nran\n");
      });
    }

    it("a failed step is not recorded, so the next up retries it", () => {
      const root = mkdtempSync(join(scratch, "once-"));
      const r = spawnSync("bash", ["-s"], { input: guardOnce("x", "1", "exit 7"), encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root } });
      assert.equal(r.status, 7);
      assert.throws(() => readFileSync(join(root, ONCE_DIR, "x")));
    });
  });

  it("restart script waits for the API", () => {
    assert.match(renderRestartScript("srv-2"), /systemctl stop k3s\nsystemctl start --no-block k3s[\s\S]*readyz/);
  });

  describe("resources (Pulumi mocks)", () => {
    it("prod: generated secretbox key, reencrypt + one-at-a-time restarts, then verify; keys stay secret", async () => {
      const config = sampleConfig("prod");
      const recorder = installMocks("prod");
      const cluster = new K3sCluster("prod", { config, token: pulumi.secret("t") }, { transformations: [recorder.transformation] });
      await recorder.settle(cluster.kubeconfig);
      const r = recorder.registered;
      const key = [...r.values()].filter((x) => x.type === "random:index/randomPassword:RandomPassword" && x.name.includes("encryption-key"));
      assert.deepEqual(key.map((k) => k.name), ["prod-encryption-key-secretbox"]);
      assert.equal([...r.values()].filter((x) => x.type === "random:index/randomBytes:RandomBytes").length, 0);
      const chain = ["prod-encryption-reencrypt", "prod-encryption-reencrypt-restart-prod-server-1", "prod-encryption-reencrypt-restart-prod-server-2", "prod-encryption-reencrypt-restart-prod-server-3", "prod-encryption-verify"];
      for (let i = 1; i < chain.length; i++) assert.deepEqual(r.get(chain[i]!)!.dependsOn, [chain[i - 1]], chain[i]);
      // The rotation restarts servers: it waits for every node's join, agents and their batches included (issue 21).
      const joins = [...r.values()].filter((x) => /-apply$|^prod-agent-batch-\d+-(drain|uncordon)$/.test(x.name)).map((x) => x.name);
      assert.ok(joins.includes("prod-prod-agent-3-apply"));
      assert.deepEqual(r.get(chain[0]!)!.dependsOn.sort(), joins.sort());
      const write = r.get("prod-prod-server-2-secrets")!;
      assert.ok(write.secretProps.has("stdin"));
      assert.equal(write.inputs.logging, "none");
      assert.match(String(write.inputs.create), /write \/var\/lib\/rancher\/k3s\/server\/encryption-config\.json 0600|encryption-config/);
      assert.ok(r.get("prod-encryption-verify")!.secretProps.has("stdin"), "the verify script embeds a hash of the keys");
    });

    describe("one-shot steps run only when their own trigger changes (issue 16.3)", () => {
      const build = async (config: ReturnType<typeof sampleConfig>) => {
        const recorder = installMocks(config.environment);
        const cluster = new K3sCluster(config.environment, { config, token: pulumi.secret("t") }, { transformations: [recorder.transformation] });
        await recorder.settle(cluster.kubeconfig);
        return recorder.registered;
      };
      const oneShot = (r: Map<string, { name: string; inputs: Record<string, unknown> }>) =>
        [...r.values()].filter((x) => /-encryption-(rotate|prepare|reencrypt)/.test(x.name));
      const rotating = (edit: (raw: Record<string, unknown>) => void = () => {}) =>
        loadStackConfig(variant("staging", (r) => {
          r.encryption = { enabled: true, rotation: 1 };
          edit(r as unknown as Record<string, unknown>);
        }));

      for (const [label, make] of [
        ["k3s mode (rotate-keys)", rotating],
        ["custom mode (re-encrypt)", (edit: (raw: Record<string, unknown>) => void = () => {}) => loadStackConfig(variant("prod", (r) => {
          r.encryption = { ...r.encryption, rotation: 1 };
          edit(r as unknown as Record<string, unknown>);
        }))],
      ] as const) {
        it(`${label}: ssh.perDialTimeout changes no one-shot step's triggers, create, update or stdin; update is a no-op`, async () => {
          const before = await build(make());
          const after = await build(make((r) => (r.ssh = { ...(r.ssh as object), perDialTimeout: 20 })));
          const steps = oneShot(before);
          assert.ok(steps.length >= 2, `one-shot steps: ${steps.map((s) => s.name).join(", ")}`);
          for (const step of steps) {
            const next = after.get(step.name)!;
            assert.equal(innerCommand(step.inputs.update as string), NO_OP_UPDATE, `${step.name}: Update would run a script`);
            for (const field of ["triggers", "create", "update", "stdin"]) {
              assert.deepEqual(next.inputs[field], step.inputs[field], `${step.name}.${field} changed with an SSH setting`);
            }
            assert.notDeepEqual(next.inputs.connection, step.inputs.connection, "the test changes the connection");
          }
        });
      }

      it("a rotation bump changes exactly the one-shot steps' triggers (and the verify step's)", async () => {
        const before = await build(rotating());
        const after = await build(loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: true, rotation: 2 }))));
        const changed = [...after.values()].filter((x) => JSON.stringify(x.inputs.triggers) !== JSON.stringify(before.get(x.name)?.inputs.triggers)).map((x) => x.name);
        assert.deepEqual(changed.sort(), [...oneShot(before).map((x) => x.name), "staging-encryption-verify"].sort());
      });
    });

    it("is absent when encryption is off", async () => {
      const recorder = installMocks("dev");
      const cluster = new K3sCluster("dev", { config: sampleConfig("dev"), token: pulumi.secret("t") }, { transformations: [recorder.transformation] });
      await recorder.settle(cluster.kubeconfig);
      assert.equal([...recorder.registered.keys()].some((n) => n.includes("encryption")), false);
      assert.equal(cluster.encryptionStatus, undefined);
    });
  });
});
