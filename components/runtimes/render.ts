import { CONTAINERD_2, hasFeature, releaseOf } from "../config/flags";
import type { NodeContext } from "../config/context";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import type { Contribution, StagedFile } from "../plan/contribution";
import { KubeObject, MANAGED_BY } from "../kube/objects";
import { joinShell, raw, Shell, sh } from "../shell/sh";

/**
 * Container runtimes: NVIDIA, docker (cri-dockerd), the default runtime, the snapshotter and a
 * containerd config template. Sources: K3s "Advanced Options" docs (seeds 000/001: "NVIDIA
 * Container Runtime Support", "Using Docker as the Container Runtime", "Configuring containerd",
 * "Enabling Lazy Pulling of eStargz"); k3s-io/k3s#8700/#8751 (packaged RuntimeClasses, default-runtime).
 */

/** RuntimeClasses K3s configures containerd handlers for when it finds the NVIDIA runtime binaries. */
export const NVIDIA_RUNTIME_CLASSES = ["nvidia", "nvidia-experimental"] as const;
/** Where K3s looks for them (besides $PATH): the GPU operator's toolkit directory. */
const NVIDIA_TOOLKIT_DIR = "/usr/local/nvidia/toolkit";
/** Node label for GPU nodes (the label NVIDIA's device plugin / GPU feature discovery select on). */
export const GPU_LABEL = "nvidia.com/gpu.present";

export function gpuNodes(config: ResolvedConfig): NodeConfig[] {
  return config.nodes.filter((n) => n.gpu === "nvidia");
}

/**
 * The `nvidia` / `nvidia-experimental` RuntimeClasses (node.k8s.io/v1, built in). Rendered only
 * when a node declares `gpu: nvidia` AND K3s' own `runtimes` add-on is disabled: since
 * k3s-io/k3s#8751 K3s deploys these RuntimeClasses itself, and two owners would fight.
 */
export function renderRuntimeClasses(config: ResolvedConfig): KubeObject[] {
  if (gpuNodes(config).length === 0 || !config.k3s.disable.includes("runtimes")) return [];
  return NVIDIA_RUNTIME_CLASSES.map((name) => ({
    apiVersion: "node.k8s.io/v1",
    kind: "RuntimeClass",
    metadata: { name, labels: { ...MANAGED_BY } },
    handler: name,
  }));
}

/** Labels a node gets after registration for its runtimes. */
export function runtimeNodeLabels(node: NodeConfig): Record<string, string> {
  return node.gpu === "nvidia" ? { [GPU_LABEL]: "true" } : {};
}

// ---------------------------------------------------------------- containerd template

const CONTAINERD_DIR = "/var/lib/rancher/k3s/agent/etc/containerd";

/**
 * Where the user's containerd template goes: `config-v3.toml.tmpl` on releases with containerd
 * 2.0 (config version 3), `config.toml.tmpl` before (containerd 1.7, config version 2). See
 * flags.ts CONTAINERD_2 for the releases. A K3s upgrade across that line moves the file (apply.sh
 * removes the one no longer planned) — the template's schema must then be migrated by the user.
 */
export function containerdTemplateTarget(config: Pick<ResolvedConfig, "k3s">): string {
  const release = releaseOf(config.k3s);
  const v3 = !release || hasFeature(CONTAINERD_2, release);
  return `${CONTAINERD_DIR}/${v3 ? "config-v3.toml.tmpl" : "config.toml.tmpl"}`;
}

/** Whether the configured release runs containerd 2.x. */
export function usesContainerd2(config: Pick<ResolvedConfig, "k3s">): boolean {
  return containerdTemplateTarget(config).endsWith("config-v3.toml.tmpl");
}

/** The template's name in the node bundle. */
export const CONTAINERD_TEMPLATE_FILE = "containerd.toml.tmpl";

/** The node's containerd template file, when k3s.containerdTemplate is set. */
export function containerdTemplateFile(config: Pick<ResolvedConfig, "k3s">): StagedFile | undefined {
  const template = config.k3s.containerdTemplate;
  if (template === undefined) return undefined;
  return { name: CONTAINERD_TEMPLATE_FILE, target: containerdTemplateTarget(config), content: template.endsWith("\n") ? template : `${template}\n`, mode: "0600" };
}

// ---------------------------------------------------------------- os-prep checks

/** os-prep checks for the runtimes the node uses; fail naming the fix. */
export function runtimeChecks(config: ResolvedConfig, node: NodeConfig): Shell {
  const checks: Shell[] = [];
  if (node.gpu === "nvidia") {
    checks.push(sh`# gpu: nvidia: K3s configures the nvidia runtimes only when it finds the binaries at start.
if ! have nvidia-container-runtime && [ ! -x "$ROOT"${`${NVIDIA_TOOLKIT_DIR}/nvidia-container-runtime`} ]; then
  fail "nodes[].gpu is nvidia but nvidia-container-runtime is not installed: install the NVIDIA container toolkit (nvidia-container-runtime) and the driver"
fi`);
  }
  if (config.k3s.docker) {
    checks.push(sh`# k3s.docker: K3s runs pods through cri-dockerd against the host's Docker.
have docker || fail "k3s.docker is true but docker is not installed: install Docker (e.g. the distribution's docker.io / docker-ce package)"
service_active docker || fail "k3s.docker is true but the docker service is not running: systemctl enable --now docker"`);
  }
  if (config.k3s.snapshotter === "fuse-overlayfs") {
    checks.push(sh`[ -e "$ROOT/dev/fuse" ] || fail "k3s.snapshotter fuse-overlayfs needs /dev/fuse: load the fuse kernel module"`);
  }
  // Nothing at all when no runtime feature is in use, so other nodes' os-prep (and its hash) stay as they were.
  return checks.length ? sh`
# ---------------------------------------------------------------- container runtimes
${joinShell(checks)}
` : raw("");
}

/** runtimes concern: the containerd template and the runtime labels (GPU) of the node. */
export function contribute(ctx: NodeContext): Contribution {
  const template = containerdTemplateFile(ctx.config);
  return { files: template ? [template] : [], labels: runtimeNodeLabels(ctx.node) };
}
