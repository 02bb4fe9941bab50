import type { ResolvedConfig } from "../config/schema";
import { raw, Shell, sh } from "../shell/sh";

/**
 * Download mode with `k3s.binarySha256`: the pinned release's binary digest, checked on the host
 * before anything is disrupted (apply.sh, after the "up to date" exit and the install script's
 * digest, before the upgrade's snapshot, cordon and drain), and once more on the binary the
 * install script put in place, before K3s is restarted.
 *
 * What the install script does (k3s-io/k3s install.sh): `setup_verify_arch` maps `uname -m` to
 * ARCH/SUFFIX (amd64|x86_64 → amd64 ""; arm64|aarch64 → arm64 "-arm64"; s390x → s390x "-s390x";
 * arm* → arm "-armhf"); `download_hash` fetches
 * `${GITHUB_URL}/download/${VERSION_K3S}/sha256sum-${ARCH}.txt` (GITHUB_URL
 * https://github.com/k3s-io/k3s/releases) and takes the line ending in ` k3s${SUFFIX}`;
 * `download_binary`/`verify_binary` refuse a binary whose sha256 differs from it. So the preflight
 * compares that very line with the pin: a release whose checksum file (and so its binary) is not
 * the one pinned is refused before the node is touched, and the install script's own check ties
 * the downloaded binary to it.
 */

export const RELEASES_URL = "https://github.com/k3s-io/k3s/releases/download";

type Pin = NonNullable<ResolvedConfig["k3s"]["binarySha256"]>;

/** The pin per K3s architecture name (a single digest stands for every architecture). */
function pinFor(pin: Pin): Record<"amd64" | "arm64" | "arm" | "s390x", string> {
  if (typeof pin === "string") return { amd64: pin, arm64: pin, arm: pin, s390x: pin };
  return { amd64: pin.amd64 ?? "", arm64: pin.arm64 ?? "", arm: pin.arm ?? "", s390x: pin.s390x ?? "" };
}

/** Preflight lines for apply.sh (uses its `preflight_fail` and `$ROOT`); empty unless download mode pins the binary. */
export function renderBinaryPinPreflight(config: ResolvedConfig): Shell {
  const { k3s } = config;
  if (k3s.airgap.enabled || !k3s.binarySha256 || !k3s.version) return raw("");
  const pin = pinFor(k3s.binarySha256);
  return sh`
# Preflight: the pinned K3s binary digest against the release's checksum file, as the install
# script reads it (components/k3s/binary-pin.ts).
case "$(uname -m)" in
  amd64 | x86_64) K3S_ARCH=amd64 K3S_SUFFIX="" WANT_K3S_SHA256=${pin.amd64} ;;
  arm64 | aarch64) K3S_ARCH=arm64 K3S_SUFFIX=-arm64 WANT_K3S_SHA256=${pin.arm64} ;;
  s390x) K3S_ARCH=s390x K3S_SUFFIX=-s390x WANT_K3S_SHA256=${pin.s390x} ;;
  arm*) K3S_ARCH=arm K3S_SUFFIX=-armhf WANT_K3S_SHA256=${pin.arm} ;;
  *) preflight_fail "architecture $(uname -m) has no K3s release binary" ;;
esac
[ -n "$WANT_K3S_SHA256" ] || preflight_fail "k3s.binarySha256 has no digest for $K3S_ARCH"
SUMS_URL=${RELEASES_URL}/${k3s.version}/sha256sum-"$K3S_ARCH".txt
sums="$(mktemp)"
if ! curl -sfL --proto '=https' --retry 3 --max-time 60 -o "$sums" "$SUMS_URL"; then
  rm -f "$sums"
  preflight_fail "cannot download the release checksums $SUMS_URL"
fi
listed="$(awk -v name="k3s$K3S_SUFFIX" '$2 == name { print $1 }' "$sums")"
rm -f "$sums"
[ "$listed" = "$WANT_K3S_SHA256" ] || preflight_fail "$SUMS_URL lists sha256 '\${listed:-none}' for k3s$K3S_SUFFIX, not $WANT_K3S_SHA256 (k3s.binarySha256)"
export WANT_K3S_SHA256
`;
}

/**
 * After the install script, before the restart: the binary it put in place has the pinned digest
 * (install.sh puts it in /usr/local/bin, or /opt/bin when /usr/local/bin is read-only: setup_env).
 * On a mismatch the running K3s is left as it is, and the message says not to restart it.
 */
export function renderBinaryPinCheck(config: ResolvedConfig): Shell {
  const { k3s } = config;
  if (k3s.airgap.enabled || !k3s.binarySha256 || !k3s.version) return raw("");
  return sh`if [ -n "\${WANT_K3S_SHA256:-}" ]; then
  installed_k3s="$ROOT/usr/local/bin/k3s"
  [ -x "$installed_k3s" ] || installed_k3s="$ROOT/opt/bin/k3s"
  have_k3s_sha256="$(sha256sum "$installed_k3s" | cut -d' ' -f1)"
  [ "$have_k3s_sha256" = "$WANT_K3S_SHA256" ] || fail "host $HOST, step install: \${installed_k3s#"$ROOT"} has sha256 $have_k3s_sha256, not $WANT_K3S_SHA256 (k3s.binarySha256); K3s was not restarted: do not restart it before the binary is replaced"
fi
`;
}
