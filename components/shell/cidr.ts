import { raw, Shell } from "./sh";

/**
 * Bash functions that answer "is this address inside that CIDR?" on a host, for IPv4 and IPv6
 * alike (issue 26: an IPv4-only check made every dual-stack node restart once on the move to node
 * networks, and left the old per-address firewall rules behind). Pure bash (no ipcalc or python
 * on a minimal host). Mirrors config/net.ts cidrContains, which the tests compare it with.
 *
 *   ipv4_int A       A as a 32-bit number; fails for anything that is not a dotted quad.
 *   ipv6_hex A       A as 32 lowercase hex digits (`::` expanded); fails for anything else,
 *                    including the embedded-IPv4 form (`::ffff:1.2.3.4`): never covered, so the
 *                    callers then do the conservative thing (restart, keep the rule).
 *   cidr_contains C A  whether CIDR C (`net/bits`) holds address A of the same family.
 */
export const CIDR_FUNCTIONS: Shell = raw(`# ipv4_int A: the IPv4 address A as a number; fails for anything else.
ipv4_int() {
  [[ "$1" =~ ^([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})$ ]] || return 1
  local a=$((10#\${BASH_REMATCH[1]})) b=$((10#\${BASH_REMATCH[2]})) c=$((10#\${BASH_REMATCH[3]})) d=$((10#\${BASH_REMATCH[4]}))
  if [ "$a" -gt 255 ] || [ "$b" -gt 255 ] || [ "$c" -gt 255 ] || [ "$d" -gt 255 ]; then return 1; fi
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
# ipv6_hex A: the IPv6 address A as 32 hex digits ("::" expanded); fails for anything else.
ipv6_hex() {
  local a="\${1,,}" head tail g out="" fill
  local -a hs=() ts=()
  [[ "$a" == *:* && "$a" =~ ^[0-9a-f:]+$ ]] || return 1
  if [[ "$a" == :* && "$a" != ::* ]] || [[ "$a" == *: && "$a" != *:: ]]; then return 1; fi
  if [[ "$a" == *::* ]]; then
    head="\${a%%::*}"
    tail="\${a#*::}"
    [[ "$tail" != *::* ]] || return 1
    [ -z "$head" ] || IFS=: read -r -a hs <<<"$head"
    [ -z "$tail" ] || IFS=: read -r -a ts <<<"$tail"
    fill=$((8 - \${#hs[@]} - \${#ts[@]}))
    [ "$fill" -ge 1 ] || return 1
  else
    IFS=: read -r -a hs <<<"$a"
    [ "\${#hs[@]}" -eq 8 ] || return 1
    fill=0
  fi
  for g in "\${hs[@]}"; do
    [[ "$g" =~ ^[0-9a-f]{1,4}$ ]] || return 1
    out+="$(printf '%04x' "$((16#$g))")"
  done
  while [ "$fill" -gt 0 ]; do out+="0000"; fill=$((fill - 1)); done
  for g in "\${ts[@]}"; do
    [[ "$g" =~ ^[0-9a-f]{1,4}$ ]] || return 1
    out+="$(printf '%04x' "$((16#$g))")"
  done
  printf '%s' "$out"
}
# cidr_contains CIDR A: whether CIDR (net/bits) holds the address A of the same family.
cidr_contains() {
  local net="\${1%/*}" bits="\${1#*/}" a n mask whole rest
  [[ "$1" == */* && "$bits" =~ ^[0-9]{1,3}$ ]] || return 1
  bits=$((10#$bits))
  if a="$(ipv4_int "$2")"; then
    n="$(ipv4_int "$net")" || return 1
    [ "$bits" -le 32 ] || return 1
    mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
    [ $((a & mask)) -eq $((n & mask)) ]
    return
  fi
  a="$(ipv6_hex "$2")" || return 1
  n="$(ipv6_hex "$net")" || return 1
  [ "$bits" -le 128 ] || return 1
  whole=$((bits / 4))
  rest=$((bits % 4))
  [ "\${a:0:whole}" = "\${n:0:whole}" ] || return 1
  [ "$rest" -ne 0 ] || return 0
  mask=$(((0xF << (4 - rest)) & 0xF))
  [ $((16#\${a:whole:1} & mask)) -eq $((16#\${n:whole:1} & mask)) ]
}`);
