import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { renderUpstreamResolvConf, UPSTREAM_RESOLV_CONF } from "./render";

/** dns concern (node side): the kubelet resolv.conf CoreDNS forwards to, when dns.upstreams is set. */
export function contribute(ctx: NodeContext): Contribution {
  const resolvConf = renderUpstreamResolvConf(ctx.config);
  return resolvConf ? { files: [{ name: "resolv.conf", content: resolvConf, target: UPSTREAM_RESOLV_CONF, mode: "0644" }] } : {};
}
