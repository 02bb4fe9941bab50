import { ResolvedConfig, SecretKey } from "../components/config/schema";
import { renderDns } from "../components/dns/render";
import { keyedProvidersInUse, renderEncryptionConfig, renderRestartScript, renderVerifyScript, rotationPhases } from "../components/encryption/render";
import { toManifest } from "../components/kube/manifest";
import { renderRuntimeClasses } from "../components/runtimes/render";
import { renderTenants } from "../components/tenants/render";
import { planCluster, PlanOptions } from "../components/plan/node";
import { restoreRunbook } from "../components/backup/runbook";
import { renderOperations } from "../components/operations/render";

/** A secret's stand-in in rendered output: names the config key, never a value. */
export function placeholder(key: SecretKey): string {
  return `<redacted: secret k3s-platform:${key}>`;
}

export { toManifest };

/**
 * Every file each node would get, keyed `<node>/<file>` (secret files under `<node>/secrets/`,
 * with placeholders), plus `<node>/plan.json` describing targets, order and commands; the
 * Kubernetes manifests under `k8s/`; the encryption config (keys redacted) and lifecycle scripts
 * under `encryption/`; the etcd restore runbook under `backup/`; every day-2 step in run order
 * under `operations/` (components/operations/render.ts).
 */
export function renderTree(config: ResolvedConfig, secrets: ReadonlySet<SecretKey>, options: PlanOptions = {}): Map<string, string> {
  const plan = planCluster(config, { ...options, hasRegistryAuth: secrets.has("registryAuth") });
  const stand = {
    token: placeholder("token"),
    agentToken: secrets.has("agentToken") ? placeholder("agentToken") : undefined,
    datastoreEndpoint: placeholder("datastoreEndpoint"),
    etcdS3AccessKey: secrets.has("etcdS3AccessKey") ? placeholder("etcdS3AccessKey") : undefined,
    etcdS3SecretKey: secrets.has("etcdS3SecretKey") ? placeholder("etcdS3SecretKey") : undefined,
    vpnAuthKey: secrets.has("vpnAuthKey") ? placeholder("vpnAuthKey") : undefined,
    registryAuth: secrets.has("registryAuth")
      ? { "<each registry>": { username: placeholder("registryAuth"), password: placeholder("registryAuth") } }
      : undefined,
    encryptionKeys: Object.fromEntries(
      keyedProvidersInUse(config.encryption).map((type) => [type, [{ name: `${type}-key-1`, secret: placeholder("encryptionKeys") }]]),
    ),
  };
  const tree = new Map<string, string>();
  plan.nodes.forEach((nodePlan, order) => {
    const dir = nodePlan.node.name;
    for (const f of nodePlan.files) tree.set(`${dir}/${f.name}`, f.content);
    for (const s of nodePlan.secretFiles) tree.set(`${dir}/secrets/${s.name}`, s.render(stand));
    const summary = {
      node: nodePlan.node.name,
      role: nodePlan.role,
      order,
      files: Object.fromEntries(nodePlan.files.map((f) => [f.name, f.target ?? "(runs from staging)"])),
      secretFiles: Object.fromEntries(nodePlan.secretFiles.map((s) => [s.name, s.target])),
      postRegistrationLabels: nodePlan.postRegistrationLabels,
      commands: nodePlan.commands,
      // Every file above travels in this one self-extracting bundle (components/node/bundle.ts).
      bundle: { name: nodePlan.bundle.name, sha256: nodePlan.bundle.sha256 },
      hashes: nodePlan.hashes,
    };
    tree.set(`${dir}/plan.json`, JSON.stringify(summary, null, 2) + "\n");
  });
  const tenants = renderTenants(config);
  if (tenants.length) tree.set("k8s/tenants.yaml", toManifest(tenants));
  const dns = renderDns(config);
  if (dns.length) tree.set("k8s/dns.yaml", toManifest(dns));
  const runtimes = renderRuntimeClasses(config);
  if (runtimes.length) tree.set("k8s/runtimes.yaml", toManifest(runtimes));
  // The etcd restore runbook (components/backup): run by hand, never by `up`.
  for (const [path, script] of restoreRunbook(config)) tree.set(path, script);
  const enc = config.encryption;
  if (enc.enabled) {
    if (enc.mode === "custom") tree.set("encryption/encryption-config.yaml", renderEncryptionConfig(enc, stand.encryptionKeys));
    tree.set("encryption/verify.sh", renderVerifyScript(config, enc.mode === "custom" ? "<sha256 of the deployed config>" : undefined));
    for (const phase of rotationPhases(config)) tree.set(`encryption/rotate-${phase.name}.sh`, phase.script);
    if (rotationPhases(config).length) tree.set("encryption/restart-server.sh", renderRestartScript("<server>"));
  }
  // Facts only the engine knows: secrets as placeholders, the baseline of an existing cluster
  // (every one-shot step runs: the script shown is the one that does the work).
  const facts = {
    baseline: {},
    token: stand.token,
    tokenSalt: "<token fingerprint salt>",
    encryptionKeys: stand.encryptionKeys,
    restoreToken: secrets.has("restoreToken") ? placeholder("restoreToken") : "",
    // A channel stack's agent batch steps run at the release its k3s-release step records.
    clusterRelease: "<the release k3s-release recorded>",
  };
  for (const [path, content] of renderOperations(config, plan, facts)) tree.set(path, content);
  return tree;
}
