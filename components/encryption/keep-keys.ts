import { sh } from "../shell/sh";

/**
 * The host-side write of the custom EncryptionConfiguration, pure.
 *
 * The rendered file arrives on stdin. Every key of a keyed provider (aescbc, aesgcm, secretbox)
 * that the deployed file holds and the new one does not (same provider and name) is appended
 * after that provider's keys in the new file: the API server encrypts with the first key and
 * tries every listed one on read (Kubernetes "Encrypting Confidential Data at Rest"), so data
 * written with a key the program no longer knows — after `destroy` then `up` regenerated the
 * keys, or after a key was replaced in config — stays readable. The program never drops a key;
 * retiring one after a re-encryption is a deliberate manual edit (docs/in-cluster.md).
 *
 * A deployed key whose name the new file reuses with another secret stops the write (exit 3):
 * the stored values carry the key name (`k8s:enc:<provider>:v1:<name>:`), so two secrets under
 * one name would make the old data unreadable.
 *
 * The parser reads the layout renderEncryptionConfig writes (yaml's stringify: `- <provider>:`,
 * then `keys:` entries `- name: …` / `secret: …`); quotes around scalars are ignored when comparing.
 */
export const KEEP_KEYS_AWK = String.raw`
function unq(s) { if (s ~ /^".*"$/ || s ~ /^'.*'$/) return substr(s, 2, length(s) - 2); return s }
function ind(s) { match(s, /^ */); return RLENGTH }
function pad(n,  out) { out = ""; while (n-- > 0) out = out " "; return out }
function flush(  i, k) {
  for (i = 1; i <= cnt; i++) {
    k = order[i]
    if (substr(k, 1, length(t) + 1) != t SUBSEP) continue
    if (k in newsec) {
      if (newsec[k] != oldsec[k]) {
        printf "encryption-config: key %s of %s is deployed with another secret; give the new key another name so data written with the deployed one stays readable\n", oldname[k], t > "/dev/stderr"
        failed = 1
      }
      continue
    }
    print pad(ni) "- name: " oldname[k]
    print pad(ni + 2) "secret: " oldraw[k]
    kept++
  }
}
phase != 2 {
  if ($0 ~ /^ *- (aescbc|aesgcm|secretbox):$/) { t = $0; sub(/^ *- /, "", t); sub(/:$/, "", t); p = ind($0); inb = 1; next }
  if (inb && $0 !~ /^ *$/ && ind($0) <= p) inb = 0
  if (inb && $0 ~ /^ *- name: /) { n = $0; sub(/^ *- name: /, "", n); next }
  if (inb && $0 ~ /^ *secret: /) {
    s = $0; sub(/^ *secret: /, "", s); k = t SUBSEP unq(n)
    if (!(k in oldsec)) { oldsec[k] = unq(s); oldname[k] = n; oldraw[k] = s; order[++cnt] = k }
  }
  next
}
FNR == 1 { inb = 0 }
phase == 2 {
  if (inb && $0 !~ /^ *$/ && ind($0) <= p) { flush(); inb = 0 }
  if ($0 ~ /^ *- (aescbc|aesgcm|secretbox):$/) { t = $0; sub(/^ *- /, "", t); sub(/:$/, "", t); p = ind($0); inb = 1; print; next }
  if (inb && $0 ~ /^ *- name: /) { n = $0; sub(/^ *- name: /, "", n); ni = ind($0) }
  if (inb && $0 ~ /^ *secret: /) { s = $0; sub(/^ *secret: /, "", s); newsec[t SUBSEP unq(n)] = unq(s) }
  print
}
END {
  if (inb) flush()
  if (failed) exit 3
  if (kept) printf "encryption-config: kept %d deployed key(s) the new configuration does not list\n", kept > "/dev/stderr"
}
`;

/**
 * Shell that writes stdin to `target` (mode `mode`), keeping deployed keys as described above.
 * Atomic (temp file + mv); nothing is written when a key name collides. `$K3S_PLATFORM_ROOT` prefixes
 * paths (unset on hosts; tests point it at a scratch directory).
 */
export function renderKeepKeysWrite(target: string, mode: string): string {
  const t = sh`"$ROOT"${target}`;
  const tmp = sh`"$ROOT"${`${target}.tmp`}`;
  const incoming = sh`"$ROOT"${`${target}.in`}`;
  const record = sh`"$ROOT"${ENCRYPTION_WRITE_RECORD}`;
  return sh`set -eu
ROOT="\${K3S_PLATFORM_ROOT:-}"
umask 077
mkdir -p "$(dirname ${t})" "$(dirname ${record})"
in=${incoming}
trap 'rm -f "$in"' EXIT
cat >"$in"
old=${t}
[ -f "$old" ] || old=/dev/null
awk ${KEEP_KEYS_AWK} "$old" phase=2 "$in" >${tmp} || { rm -f ${tmp}; exit 3; }
chmod ${mode} ${tmp}
mv ${tmp} ${t}
printf 'rendered %s\nwritten %s\n' "$(sha256sum "$in" | cut -d' ' -f1)" "$(sha256sum ${t} | cut -d' ' -f1)" >${record}`.text;
}

/**
 * What the write step wrote: the SHA-256 of the rendered configuration it received and of the
 * file it wrote (rendered + kept keys). The verify step checks both.
 */
export const ENCRYPTION_WRITE_RECORD = "/var/lib/k3s-platform/encryption-config.sha256";
