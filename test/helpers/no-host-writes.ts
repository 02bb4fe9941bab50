import { existsSync } from "node:fs";

/**
 * A mocha root hook (loaded by .mocharc.json): no unit test may write where K3s or k3s-platform
 * keep state on this machine's own root. A script run without its sandbox root
 * (K3S_PLATFORM_ROOT unset) writes there, and the e2e hosts are overlays of this root, so such a
 * leftover shows on every test host (a deleted directory then reads as present: the overlay's
 * whiteout). Paths present before the suite (a machine that runs K3s itself) are left alone.
 */
const GUARDED = ["/var/lib/k3s-platform", "/var/lib/rancher", "/etc/rancher", "/var/lib/kubelet", "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service"] as const;

const before = new Set(GUARDED.filter((p) => existsSync(p)));

export const mochaHooks = {
  afterEach(this: Mocha.Context) {
    const written = GUARDED.filter((p) => !before.has(p) && existsSync(p));
    if (written.length === 0) return;
    written.forEach((p) => before.add(p)); // named once, by the test that wrote it
    throw new Error(`${this.currentTest?.fullTitle() ?? "a test"} wrote ${written.join(", ")} on this machine's own root: run its scripts under a sandbox root (K3S_PLATFORM_ROOT)`);
  },
};
