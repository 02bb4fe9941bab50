import { contribute as authentication } from "../authentication/render";
import { contribute as cis } from "../cis/render";
import { contribute as decommission } from "../decommission/contribute";
import { contribute as dns } from "../dns/contribute";
import { contribute as encryption } from "../encryption/render";
import { contribute as hooks } from "../hooks/render";
import { contribute as k3s } from "../k3s/contribute";
import { contribute as kubeVip } from "../kube-vip/render";
import { contribute as manifests } from "../manifests/render";
import { contribute as osPrep } from "../os-prep/render";
import { contribute as registries } from "../registries/render";
import { contribute as runtimes } from "../runtimes/render";
import { contribute as servicelb } from "../servicelb/pools";
import { contribute as upgrade } from "../upgrade/contribute";
import type { Concern } from "./contribution";

/**
 * The concerns a node's plan is made of, in fold order. The order is the order of the staged
 * files in the bundle and in apply.sh, of the secret files, of config.yaml's keys and of the
 * hooks: appending a concern changes nothing before it. os-prep is last because its script runs
 * from staging (no target) in its own step.
 */
export const CONCERNS: readonly Concern[] = [
  { name: "k3s", contribute: k3s },
  { name: "registries", contribute: registries },
  { name: "dns", contribute: dns },
  { name: "cis", contribute: cis },
  { name: "encryption", contribute: encryption },
  // The API server's OIDC providers (servers only).
  { name: "authentication", contribute: authentication },
  { name: "kube-vip", contribute: kubeVip },
  { name: "manifests", contribute: manifests },
  { name: "servicelb", contribute: servicelb },
  { name: "runtimes", contribute: runtimes },
  // After encryption: its guard reads the running cluster before the rebuild guard may join one.
  { name: "decommission", contribute: decommission },
  { name: "os-prep", contribute: osPrep },
  // Day-2: hooks only, after every concern's own hooks (e.g. the encryption guard runs first).
  { name: "upgrade", contribute: upgrade },
  // The user's hooks (docs/hooks.md): beforeUpgrade after the upgrade's drain, the rest last.
  { name: "hooks", contribute: hooks },
];
