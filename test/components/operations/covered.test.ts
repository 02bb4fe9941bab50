import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterRecordKey, OPERATIONS_CONFIGMAP, readClusterRecord } from "../../../components/operations/covered";

/**
 * readClusterRecord tells kubectl's answers apart by kind (issue 23, review): only kubectl's
 * NotFound for the operations ConfigMap is "no record"; the API not answering is a warning (the
 * host's records decide); anything else fails the step with kubectl's words. Before, any output
 * holding "not found" (`k3s: command not found`) read as "no record", and the step then recorded
 * the operation again. kubectl's messages: k8s.io/kubectl pkg/cmd/util/helpers.go
 * StandardErrorMessage (the connection ones) and the API's Status (`Error from server (Reason): …`).
 */
describe("operations/covered: reading the cluster's record (ConfigMap kube-system/k3s-platform-operations)", () => {
  const dir = mkdtempSync(join(tmpdir(), "k3sp-covered-"));
  const bin = join(dir, "bin");
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    spawnSync("mkdir", ["-p", bin]);
    // A stand-in `k3s kubectl get configmap …`: prints STUB_OUT, STUB_ERR on stderr, exits STUB_STATUS.
    writeFileSync(join(bin, "k3s"), `#!/bin/bash\nprintf '%s' "\${STUB_OUT:-}"\n[ -z "\${STUB_ERR:-}" ] || printf '%s\\n' "$STUB_ERR" >&2\nexit "\${STUB_STATUS:-0}"\n`);
    chmodSync(join(bin, "k3s"), 0o755);
  });

  const read = (env: Record<string, string>, path = `${bin}:/usr/bin:/bin`) => {
    const script = `set -euo pipefail\nsay() { echo "maintenance[s1] record: $*"; }\n${readClusterRecord("maintenance", "1").text}\necho "api=$cluster_api record=$cluster_record"`;
    // stdin not a socket: bash would read ~/.bashrc, taking it for an sshd session.
    const r = spawnSync("/bin/bash", ["-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { PATH: path, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const name = OPERATIONS_CONFIGMAP.name;

  it("the record: read (the API answered)", () => {
    const r = read({ STUB_OUT: Buffer.from("maintenance 1 covers: s1 a1").toString("base64") });
    assert.deepEqual([r.status, r.stdout], [0, "api=1 record=maintenance 1 covers: s1 a1\n"]);
    assert.match(clusterRecordKey("maintenance", "1"), /^maintenance-[0-9a-f]{16}$/);
  });

  it(`kubectl's NotFound for configmaps "${name}": no record, the API answered`, () => {
    const r = read({ STUB_ERR: `Error from server (NotFound): configmaps "${name}" not found`, STUB_STATUS: "1" });
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, "api=1 record=\n", ""]);
  });

  for (const [label, err] of [
    ["connection refused, discovery errors logged above it", `E1207 13:45:00.000000    4242 memcache.go:265] "Unhandled Error" err="couldn't get current server API group list: Get \\"https://127.0.0.1:6443/api?timeout=32s\\": dial tcp 127.0.0.1:6443: connect: connection refused"\nThe connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?`],
    ["a timeout", "Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout"],
    // The API answers but cannot serve: etcd lost its quorum or is down, the case a restore repairs
    // (docs/backup-and-restore.md: a broken cluster is a warning, not a refusal). Words as reported:
    // rancher/rke2#1140 (a 2-server cluster that lost one), k3s-io/k3s#3723, kubernetes/kubeadm#3095.
    ["etcd lost its quorum: the request timed out on the server", `Error from server (Timeout): the server was unable to return a response in the time allotted, but may still be processing the request (get configmaps ${OPERATIONS_CONFIGMAP.name})`],
    ["the server is unavailable", `Error from server (ServiceUnavailable): the server is currently unable to handle the request (get configmaps ${OPERATIONS_CONFIGMAP.name})`],
    ["etcd's own error, without a reason", "Error from server: etcdserver: request timed out"],
    ["an internal error", `Error from server (InternalError): an error on the server ("") has prevented the request from succeeding (get configmaps ${OPERATIONS_CONFIGMAP.name})`],
  ] as const) {
    it(`the API did not answer (${label}): a warning, only the host's records decide`, () => {
      const r = read({ STUB_ERR: err, STUB_STATUS: "1" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `maintenance[s1] record: warning: the API did not answer for the cluster's record of maintenance 1 (ConfigMap kube-system/${name}): only this host's records decide\napi=0 record=\n`);
    });
  }

  for (const [label, env, path, said] of [
    ["k3s missing (`k3s: command not found`, which held \"not found\")", {}, "/usr/bin:/bin", /k3s: command not found/],
    ["Forbidden", { STUB_ERR: `Error from server (Forbidden): configmaps "${name}" is forbidden: User "system:node:s1" cannot get resource "configmaps" in API group "" in the namespace "kube-system"`, STUB_STATUS: "1" }, undefined, /\(Forbidden\)/],
    ["another object's NotFound", { STUB_ERR: 'Error from server (NotFound): namespaces "kube-system" not found', STUB_STATUS: "1" }, undefined, /namespaces "kube-system" not found/],
    ["a NotFound line that is not the last", { STUB_ERR: `Error from server (NotFound): configmaps "${name}" not found\nerror: one more thing`, STUB_STATUS: "1" }, undefined, /one more thing/],
  ] as const) {
    it(`anything else fails the step with kubectl's words and a line naming host and step: ${label}`, () => {
      const r = read(env, path);
      assert.equal(r.status, 1, r.stdout);
      assert.equal(r.stdout, "", "nothing decided, nothing recorded");
      const lines = r.stderr.trim().split("\n");
      assert.match(lines.slice(0, -1).join("\n"), said);
      assert.match(lines.at(-1)!, new RegExp(`^maintenance\\[s1\\] record: cannot read the cluster's record of maintenance 1 \\(ConfigMap kube-system/${name}\\): k3s kubectl get configmap failed \\(status (1|127)\\) with the message above; fix it and run pulumi up again$`));
    });
  }
});
