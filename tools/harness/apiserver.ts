import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real Kubernetes control plane on 127.0.0.1 for `npm run test:cluster` and `npm run bench`: etcd (Debian's
 * etcd-server), kube-apiserver and kube-controller-manager (namespace deletion, ResourceQuota status, default service
 * accounts) built by scripts/install-apiserver.sh. Free ports, self-made certificates, one
 * directory per run; stop() ends every process it started and removes the directory.
 * No nodes and no kubelet: Pods are admitted or refused but never run.
 */

export const K8S_VERSION = process.env.K8S_VERSION ?? "v1.31.14";

export function kubernetesBin(): string {
  return process.env.K8S_BIN ?? join(process.env.K3S_PLATFORM_CACHE ?? join(homedir(), ".cache", "k3s-platform"), "kubernetes", K8S_VERSION, "bin");
}

/** What the suite needs and lacks, as one message (empty when everything is there). */
export function missingTools(): string {
  const missing: string[] = [];
  for (const tool of ["kube-apiserver", "kube-controller-manager", "kubectl"]) {
    if (!existsSync(join(kubernetesBin(), tool))) missing.push(`${tool} (scripts/install-apiserver.sh)`);
  }
  if (spawnSync("etcd", ["--version"]).status !== 0) missing.push("etcd (apt-get install etcd-server)");
  if (spawnSync("openssl", ["version"]).status !== 0) missing.push("openssl");
  return missing.join(", ");
}

/**
 * `n` distinct free ports: every listener stays open until all are chosen (closing one before
 * asking for the next lets the kernel hand out the same port twice — measured: etcd and
 * kube-apiserver got one port and the API server failed with "address already in use").
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Server>((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function openssl(dir: string, ...args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** CA, serving certificate (127.0.0.1, localhost), admin client (system:masters), SA key pair. */
function makeCertificates(dir: string): void {
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=k3s-platform-test-ca");
  const leaf = (name: string, subj: string, ext: string) => {
    openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`);
  };
  leaf("apiserver", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n");
  openssl(dir, "genrsa", "-out", "sa.key", "2048");
  openssl(dir, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

export interface ControlPlaneOptions {
  /** An EncryptionConfiguration file for kube-apiserver (--encryption-provider-config). */
  encryptionConfig?: string;
  /** Extra admission plugins (PodSecurity is on by default). */
  admissionPlugins?: string[];
  /** An AuthenticationConfiguration file (--authentication-config), as a K3s server passes it. */
  authenticationConfig?: string;
}

export class ControlPlane {
  readonly dir: string;
  readonly kubeconfig: string;
  etcdUrl = "";
  apiUrl = "";
  private readonly processes: ChildProcess[] = [];

  constructor(private readonly options: ControlPlaneOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "k3sp-cluster-"));
    this.kubeconfig = join(this.dir, "admin.kubeconfig");
    // A runner killed mid-suite (timeout, Ctrl-C, CI cancel) must not leave etcd and the API
    // server running: they hold ports, memory and CPU on a shared machine.
    process.once("exit", this.killAll);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      if (process.listenerCount(signal) === 0) process.once(signal, () => process.exit(128 + (signal === "SIGINT" ? 2 : 15)));
    }
  }

  private readonly killAll = () => {
    for (const p of this.processes) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  };

  private start(name: string, command: string, args: string[]): ChildProcess {
    const log = openSync(join(this.dir, `${name}.log`), "a");
    const child = spawn(command, args, { stdio: ["ignore", log, log], detached: false });
    this.processes.push(child);
    return child;
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  }

  private async waitFor(what: string, check: () => Promise<boolean>, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      for (const p of this.processes) if (p.exitCode !== null) throw new Error(`${what}: a control-plane process exited (${p.spawnfile} ${p.exitCode})\n${this.log("etcd")}\n${this.log("kube-apiserver")}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${what} not ready after ${seconds}s\n${this.log("kube-apiserver")}`);
  }

  /**
   * Starts etcd, kube-apiserver and kube-controller-manager. A port another process took between
   * choosing and binding it ("address already in use") is retried with new ports, up to 3 times.
   */
  async up(): Promise<this> {
    const missing = missingTools();
    if (missing) throw new Error(`test:cluster needs ${missing}`);
    makeCertificates(this.dir);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startProcesses();
      } catch (e) {
        const taken = ["etcd", "kube-apiserver", "kube-controller-manager"].some((n) => /address already in use/.test(this.log(n)));
        // Whatever started is stopped before giving up (measured: a failed start left etcd running).
        await this.stopProcesses();
        if (!taken || attempt >= 3) throw e;
        for (const n of ["etcd", "kube-apiserver", "kube-controller-manager"]) rmSync(join(this.dir, `${n}.log`), { force: true });
        rmSync(join(this.dir, "etcd"), { recursive: true, force: true });
      }
    }
  }

  private async startProcesses(): Promise<this> {
    const bin = kubernetesBin();
    const [etcdClient, etcdPeer, apiPort, kcmPort] = await freePorts(4);
    this.etcdUrl = `http://127.0.0.1:${etcdClient}`;
    this.apiUrl = `https://127.0.0.1:${apiPort}`;
    mkdirSync(join(this.dir, "etcd"), { mode: 0o700 });
    this.start("etcd", "etcd", [
      "--name", "test", "--data-dir", join(this.dir, "etcd"),
      "--listen-client-urls", this.etcdUrl, "--advertise-client-urls", this.etcdUrl,
      "--listen-peer-urls", `http://127.0.0.1:${etcdPeer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeer}`,
      "--initial-cluster", `test=http://127.0.0.1:${etcdPeer}`,
    ]);
    await this.waitFor("etcd", async () => (await fetch(`${this.etcdUrl}/health`)).ok, 60);

    const c = (f: string) => join(this.dir, f);
    this.start("kube-apiserver", join(bin, "kube-apiserver"), [
      `--etcd-servers=${this.etcdUrl}`,
      "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", `--secure-port=${apiPort}`,
      `--cert-dir=${c("certs")}`, `--tls-cert-file=${c("apiserver.crt")}`, `--tls-private-key-file=${c("apiserver.key")}`,
      `--client-ca-file=${c("ca.crt")}`,
      `--service-account-key-file=${c("sa.pub")}`, `--service-account-signing-key-file=${c("sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-cluster-ip-range=10.43.0.0/16",
      "--authorization-mode=Node,RBAC",
      "--allow-privileged=true",
      `--enable-admission-plugins=${["NodeRestriction", ...(this.options.admissionPlugins ?? [])].join(",")}`,
      ...(this.options.authenticationConfig ? [`--authentication-config=${this.options.authenticationConfig}`] : []),
      ...(this.options.encryptionConfig
        ? [`--encryption-provider-config=${this.options.encryptionConfig}`, "--encryption-provider-config-automatic-reload=true"]
        : []),
    ]);
    writeFileSync(
      this.kubeconfig,
      `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${this.apiUrl}
    certificate-authority-data: ${readFileSync(c("ca.crt")).toString("base64")}
users:
- name: admin
  user:
    client-certificate-data: ${readFileSync(c("admin.crt")).toString("base64")}
    client-key-data: ${readFileSync(c("admin.key")).toString("base64")}
contexts:
- name: test
  context: { cluster: test, user: admin }
current-context: test
`,
    );
    await this.waitFor("kube-apiserver /readyz", async () => this.kubectl(["get", "--raw=/readyz"]).status === 0, 180);
    this.start("kube-controller-manager", join(bin, "kube-controller-manager"), [
      `--kubeconfig=${this.kubeconfig}`, `--authentication-kubeconfig=${this.kubeconfig}`, `--authorization-kubeconfig=${this.kubeconfig}`,
      "--bind-address=127.0.0.1", `--secure-port=${kcmPort}`, "--leader-elect=false",
      "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token,resourcequota",
      `--service-account-private-key-file=${c("sa.key")}`, `--root-ca-file=${c("ca.crt")}`,
      "--use-service-account-credentials=false",
    ]);
    // The default ServiceAccount appears once the controllers run (Pods need it to be admitted).
    await this.waitFor("kube-controller-manager (default ServiceAccount)", async () => this.kubectl(["-n", "default", "get", "serviceaccount", "default"]).status === 0, 120);
    return this;
  }

  kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(join(kubernetesBin(), "kubectl"), [`--kubeconfig=${this.kubeconfig}`, ...args], { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return { status: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** The raw value etcd stores under `key` (etcd v3 JSON gateway, no etcdctl needed). */
  async etcdGet(key: string): Promise<Buffer | undefined> {
    const res = await fetch(`${this.etcdUrl}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from(key).toString("base64") }) });
    const body = (await res.json()) as { kvs?: Array<{ value?: string }> };
    const value = body.kvs?.[0]?.value;
    return value === undefined ? undefined : Buffer.from(value, "base64");
  }

  private async stopProcesses(): Promise<void> {
    for (const p of this.processes.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const gone = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    this.processes.length = 0;
  }

  async stop(): Promise<void> {
    await this.stopProcesses();
    process.removeListener("exit", this.killAll);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
