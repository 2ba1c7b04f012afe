#!/usr/bin/env bash
# What a test node may change on this machine outside its state directory, saved before the
# node starts and put back after it stopped (tests/support/node.rs; hack/node/teardown.sh):
#
#   hack/node/host.sh save STATE_DIR
#   hack/node/host.sh restore STATE_DIR
#
# - sysctls: kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
#   kernel.panic_on_oops and the root key quotas (its protectKernelDefaults); the CNI bridge
#   plugin turns on net.ipv4.ip_forward;
# - directories kubelet, containerd and CNI make in fixed places (pod log links, the CNI
#   result cache, shim sockets) are removed if the node made them;
# - kubelet's iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) are
#   removed if the node made them; chains that existed before (a kube-proxy) stay.
#
# `restore` is idempotent; without a saved state it changes nothing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/host.env"
usage() { echo "usage: $0 save|restore STATE_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1 state=$2
saved=$state/host.saved

kube_chains() { # command
  for table in filter nat mangle; do
    "$1" -w -t "$table" -S 2>/dev/null | awk -v t="$table" '$1 == "-N" && $2 ~ /^KUBE-/ { print t " " $2 }'
  done
}

save() {
  mkdir -p "$state"
  {
    for key in "${NODE_SYSCTLS[@]}"; do
      echo "sysctl $key=$(sysctl -n "$key")"
    done
    for dir in "${NODE_HOST_DIRS[@]}"; do
      [ -e "$dir" ] && echo "dir $dir"
    done
    for cmd in iptables ip6tables; do
      command -v "$cmd" >/dev/null || continue
      kube_chains "$cmd" | sed "s/^/chain $cmd /"
    done
  } > "$saved.tmp"
  mv "$saved.tmp" "$saved"
}

restore() {
  [ -s "$saved" ] || return 0
  # kubelet's chains that were not there before, and the rules that jump to them.
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    kube_chains "$cmd" | while read -r table chain; do
      grep -qxF "chain $cmd $table $chain" "$saved" && continue
      "$cmd" -w -t "$table" -S 2>/dev/null | grep -- "-j $chain\$" | sed 's/^-A /-D /' |
        while IFS= read -r rule; do eval "$cmd -w -t $table $rule" 2>/dev/null; done
      "$cmd" -w -t "$table" -F "$chain" 2>/dev/null
      echo "$table $chain"
    done > "$state/chains.removed"
    while read -r table chain; do
      "$cmd" -w -t "$table" -X "$chain" 2>/dev/null
    done < "$state/chains.removed"
  done
  # Directories the node made, deepest first, once empty (what is in them is the node's:
  # links into its state directory, its CNI results, its shims' sockets).
  for (( i=${#NODE_HOST_DIRS[@]}-1; i>=0; i-- )); do
    dir=${NODE_HOST_DIRS[$i]}
    grep -qxF "dir $dir" "$saved" && continue
    rmdir "$dir" 2>/dev/null
  done
  sed -n 's/^sysctl //p' "$saved" | while IFS= read -r line; do
    sysctl -q -w "$line" >/dev/null
  done
  rm -f "$saved"
}

case $action in
  save) save ;;
  restore) restore ;;
  *) usage ;;
esac
