import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A scratch root (K3S_PLATFORM_ROOT) on which os-prep.sh passes its host checks (cgroup v2 memory
 * controller, the kernel modules loaded) with `active` (firewalld or ufw) running, for the stub
 * firewall-cmd / ufw in test/helpers/stubs; `ufwDefault` is /etc/default/ufw when given.
 */
export function osPrepRoot(scratch: string, active: "firewalld" | "ufw", ufwDefault?: string): string {
  const root = mkdtempSync(join(scratch, `${active}-`));
  mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
  writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "memory\n");
  for (const m of ["br_netfilter", "overlay", "vxlan"]) mkdirSync(join(root, "sys/module", m), { recursive: true });
  if (active === "firewalld") {
    mkdirSync(join(root, "run/active"), { recursive: true });
    writeFileSync(join(root, "run/active/firewalld"), "");
  } else {
    mkdirSync(join(root, "ufw"), { recursive: true });
    writeFileSync(join(root, "ufw/active"), "");
  }
  if (ufwDefault !== undefined) {
    mkdirSync(join(root, "etc/default"), { recursive: true });
    writeFileSync(join(root, "etc/default/ufw"), ufwDefault);
  }
  return root;
}
