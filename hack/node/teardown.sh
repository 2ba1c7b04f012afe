#!/usr/bin/env bash
# Removes everything a test node left on this machine (tests/support/node.rs calls it when
# the node stops; hack/test.sh after the tests, for nodes whose test binary was killed):
#
#   hack/node/teardown.sh STATE_DIR...
#
# For each node's state directory: its daemons and containerd's shims, the processes of its
# pods, its mounts (container root file systems, volumes, network namespaces), its pod
# network (hack/node/network.sh down: bridge, veths, iptables chains), what it changed
# outside the directory (hack/node/host.sh restore: sysctls, kubelet's chains, directories),
# the cgroups of its pods (/keysmith-node in every hierarchy), and the directory. Idempotent;
# prints what it had to remove by force.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cgroup_name=keysmith-node

say() { printf 'node/teardown: %s\n' "$*" >&2; }

# Processes of the nodes' pods: every task in their cgroups (one node runs at a time).
pod_pids() {
  shopt -s globstar nullglob
  cat /sys/fs/cgroup/*/"$cgroup_name"/**/cgroup.procs 2>/dev/null | sort -un
}

kill_pods() {
  local pids
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(pod_pids)
    [ -n "$pids" ] || return 0
    say "killing pod processes $(echo $pids)"
    kill -9 $pids 2>/dev/null
    sleep 0.2
  done
}

for state in "$@"; do
  [ -d "$state" ] || continue
  # The node's daemons (when their test binary was killed), and containerd's shims, which
  # outlive containerd and are the parents of the pods' processes.
  for pid in $(ps -eo pid=,comm= | awk '$2 ~ /^(containerd|containerd-shim|kubelet|kube-scheduler)$/ { print $1 }'); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/"; then
      say "killing $(ps -o comm= -p "$pid") $pid"; kill -9 "$pid" 2>/dev/null
    fi
  done
  kill_pods
  # Mounts under the state directory, deepest first.
  mounts=$(awk -v dir="$state" '$5 == dir || index($5, dir "/") == 1 { print length($5) " " $5 }' /proc/self/mountinfo |
    sort -rn | cut -d' ' -f2-)
  for mount in $mounts; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || say "cannot unmount $mount"
  done
  # Outside the directory: kubelet's links to the pods' logs; libcni's cached results of the
  # node's sandboxes (the pod network's and the loopback's, named after the sandbox id),
  # which a sandbox killed rather than stopped leaves.
  find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null
  for task in "$state"/containerd/state/io.containerd.runtime.v2.task/*/*; do
    [ -d "$task" ] || continue
    rm -f /var/lib/cni/results/*-"$(basename "$task")"-* 2>/dev/null
  done
  # The sockets of shims that were killed (nobody listens on them any more).
  for socket in /run/containerd/s/*; do
    [ -S "$socket" ] || continue
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except ConnectionRefusedError:
    sys.exit(1)' "$socket" 2>/dev/null || rm -f "$socket"
  done
  "$here/network.sh" down
  "$here/host.sh" restore "$state"
  # --one-file-system: a mount that would not go away is never descended into.
  rm -rf --one-file-system "$state" 2>/dev/null || say "cannot remove $state"
done

kill_pods
for hierarchy in /sys/fs/cgroup/*/; do
  [ -d "$hierarchy$cgroup_name" ] || continue
  find "$hierarchy$cgroup_name" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$hierarchy$cgroup_name" ] && say "cannot remove cgroup $hierarchy$cgroup_name"
done
exit 0
