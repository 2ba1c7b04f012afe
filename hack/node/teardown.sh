#!/usr/bin/env bash
# Removes everything a test node left on this machine (tests/support/node.rs calls it when
# the node stops; hack/test.sh after the tests, for nodes whose test binary was killed):
#
#   hack/node/teardown.sh STATE_DIR...
#
# For each node's state directory: the processes of its pods and containerd shims, its
# mounts (container root file systems, volumes, network namespaces), the cgroups of its
# pods (/keysmith-node in every cgroup v1 hierarchy), its pod network (hack/node/network.sh
# down: bridge, veths, iptables chains, sysctls), the chains kubelet adds, and the directory.
# Idempotent; prints what it had to remove by force.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cgroup_name=keysmith-node

say() { printf 'node/teardown: %s\n' "$*" >&2; }

# Processes of the node's pods: every task in its cgroups.
pod_pids() {
  cat /sys/fs/cgroup/*/"$cgroup_name"/cgroup.procs /sys/fs/cgroup/*/"$cgroup_name"/**/cgroup.procs 2>/dev/null |
    sort -un
}

for state in "$@"; do
  [ -n "$state" ] || continue
  # The node's daemons (when their test binary was killed), and containerd's shims, which
  # outlive containerd and are the parents of the pods' processes.
  for pid in $(ps -eo pid=,comm= | awk '$2 ~ /^(containerd|containerd-shim|kubelet|kube-scheduler)$/ { print $1 }'); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/"; then
      say "killing $(ps -o comm= -p "$pid") $pid"; kill -9 "$pid" 2>/dev/null
    fi
  done
  # Mounts under the state directory, deepest first.
  mounts=$(awk -v dir="$state/" 'index($5, dir) == 1 || $5 == substr(dir, 1, length(dir) - 1) { print $5 }' /proc/self/mountinfo |
    awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)
  for mount in $mounts; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || say "cannot unmount $mount"
  done
  "$here/network.sh" down "$state"
  rm -rf "$state" 2>/dev/null || say "cannot remove $state"
done

# The pods' processes (all nodes share the cgroup name; only one node runs at a time).
shopt -s globstar nullglob
for _ in 1 2 3 4 5; do
  pids=$(pod_pids)
  [ -n "$pids" ] || break
  say "killing pod processes $(echo $pids)"
  kill -9 $pids 2>/dev/null
  sleep 0.2
done
for hierarchy in /sys/fs/cgroup/*/; do
  [ -d "$hierarchy$cgroup_name" ] || continue
  find "$hierarchy$cgroup_name" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$hierarchy$cgroup_name" ] && say "cannot remove cgroup $hierarchy$cgroup_name"
done

# What containerd's CNI cache and kubelet keep outside the state directory: the cached
# results of the node's network (keysmith-node), the log symlinks, and the directories
# themselves once empty.
rm -f /var/lib/cni/results/keysmith-node-* 2>/dev/null
find /var/log/containers -maxdepth 1 -type l ! -exec test -e {} \; -delete 2>/dev/null
for dir in /var/lib/cni/results /var/lib/cni /var/log/containers /var/log/pods /run/containerd/s /run/containerd; do
  rmdir "$dir" 2>/dev/null
done

# kubelet's own iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT):
# nothing else on a test machine makes KUBE- chains.
for cmd in iptables ip6tables; do
  command -v "$cmd" >/dev/null || continue
  for table in filter nat mangle; do
    chains=$("$cmd" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }')
    [ -n "$chains" ] || continue
    for builtin in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
      "$cmd" -w -t "$table" -S "$builtin" 2>/dev/null | grep -- '-j KUBE-' | sed 's/^-A /-D /' |
        while IFS= read -r rule; do eval "$cmd -w -t $table $rule" 2>/dev/null; done
    done
    for chain in $chains; do "$cmd" -w -t "$table" -F "$chain" 2>/dev/null; done
    for chain in $chains; do "$cmd" -w -t "$table" -X "$chain" 2>/dev/null; done
  done
done
exit 0
