#!/usr/bin/env bash
# Prints what a test node could leave behind on this machine, one sorted line each:
# processes of the node (containerd and its shims, kubelet, kube-scheduler, anything in a
# pod's cgroup), mounts, iptables and ip6tables rules, network devices, cgroups, network
# namespaces and the sysctls the node touches. hack/test.sh compares it before and after the
# tests, and the node tests before starting and after stopping a node: any difference is a
# leftover.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/host.env"
shopt -s globstar nullglob
{
  # (containerd-shim-runc-v2's process name is cut to 15 characters.)
  # (A zombie, killed and not yet reaped by init, holds nothing but its pid.)
  for pid in $(ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(containerd|containerd-shim|kubelet|kube-scheduler)$/ { print $1 }'); do
    echo "process $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
  done
  for procs in /sys/fs/cgroup/*/keysmith-node/**/cgroup.procs; do
    [ -s "$procs" ] && echo "process in $procs: $(wc -l < "$procs")"
  done
  awk '{ print "mount " $5 " " $9 }' /proc/self/mountinfo
  # Rules and chains; an empty table with the built-in chains at ACCEPT is no leftover (nft
  # keeps a table once any rule was made in it).
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null || continue
    "$cmd-save" 2>/dev/null | awk -v cmd="$cmd" '
      /^\*/ { table = substr($0, 2) }
      /^-A / { print cmd " " table " " $0 }
      /^:/ {
        chain = substr($1, 2)
        builtin = chain ~ /^(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)$/
        if (!builtin || $2 != "ACCEPT") print cmd " " table " chain " chain " " $2
      }'
  done
  ip -o link show 2>/dev/null | awk -F': ' '{ print "link " $2 }' | cut -d@ -f1
  # Top-level cgroups of every hierarchy, and everything under the node's cgroup root (deeper
  # cgroups elsewhere belong to whoever runs this machine and come and go).
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | sed 's/^/cgroup /'
  for root in /sys/fs/cgroup/*/keysmith-node; do
    find "$root" -type d 2>/dev/null | sed 's/^/cgroup /'
  done
  # Network namespaces, and what containerd, CNI and kubelet keep outside their directories.
  for dir in /run/netns "${NODE_HOST_DIRS[@]}"; do
    [ -e "$dir" ] && find "$dir" -maxdepth 2 2>/dev/null | sed 's/^/file /'
  done
  for key in "${NODE_SYSCTLS[@]}" net.ipv4.conf.all.route_localnet; do
    echo "sysctl $key=$(sysctl -n "$key" 2>/dev/null)"
  done
} | sort -u
