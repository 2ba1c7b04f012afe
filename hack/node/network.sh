#!/usr/bin/env bash
# The test node's pod network, which never leaves this machine (README.md "The test node").
#
#   hack/node/network.sh up APISERVER_PORT
#   hack/node/network.sh down
#
# up: a bridge (keysmith0, 10.233.0.1/24, no IPv6) for the CNI bridge plugin, and these
# rules in chains of their own (KEYSMITH-NODE*), so that `down` removes exactly them:
# - forwarding is allowed only between pods on the bridge; from the bridge to any other
#   interface and from any other interface to the bridge it is dropped (IPv4 and IPv6);
# - the only service the pods reach is the API server: 10.0.0.1:443 (the `kubernetes`
#   Service) is translated to 127.0.0.1:APISERVER_PORT (route_localnet on the bridge allows
#   that); any other packet from the bridge to this host is dropped, except the replies to
#   connections the host opened (kubelet probes, the API server's pod proxy); IPv6 from the
#   bridge is dropped altogether;
# - nothing on this host may open a connection to the Service range 10.0.0.0/24, which
#   exists only here.
# It refuses to start when the bridge or its chains exist (a node is running, or one
# crashed: run hack/node/teardown.sh), or when a route of this machine overlaps the pod or
# Service range. The sysctls the node changes are saved and restored by hack/node/host.sh.
#
# down is idempotent: it removes whatever of the above exists, also after a crash.
set -uo pipefail
bridge=keysmith0
pod_range=10.233.0.0/24
gateway=10.233.0.1/24
service_ip=10.0.0.1
service_range=10.0.0.0/24
chain=KEYSMITH-NODE

usage() { echo "usage: $0 up APISERVER_PORT | down" >&2; exit 2; }
fail() { echo "node/network.sh: $*" >&2; exit 1; }

up() {
  local port=$1
  if ip link show "$bridge" >/dev/null 2>&1 || iptables -w -S "$chain-FORWARD" >/dev/null 2>&1; then
    fail "$bridge or the $chain chains exist already: another node runs, or run hack/node/teardown.sh"
  fi
  # Routes of this machine that overlap the pod or Service range would be shadowed.
  local overlap
  overlap=$(ip -4 -o route show table all | python3 -c '
import ipaddress, sys
ours = [ipaddress.ip_network(n) for n in sys.argv[1:]]
for line in sys.stdin:
    dst = line.split()[0]
    if dst in ("default", "local", "broadcast", "unreachable", "prohibit", "blackhole"):
        dst = line.split()[1] if dst != "default" else "0.0.0.0/0"
    try:
        net = ipaddress.ip_network(dst, strict=False)
    except ValueError:
        continue
    if net.prefixlen > 0 and any(net.overlaps(o) for o in ours):
        print(line.strip())' "$pod_range" "$service_range")
  [ -z "$overlap" ] || fail "routes of this machine overlap $pod_range or $service_range: $overlap"

  set -e
  ip link add "$bridge" type bridge
  sysctl -q -w "net.ipv6.conf.$bridge.disable_ipv6=1"
  ip addr add "$gateway" dev "$bridge"
  ip link set "$bridge" up
  sysctl -q -w "net.ipv4.conf.$bridge.route_localnet=1"
  # The Service address of the API server, for the pods.
  iptables -w -t nat -N "$chain"
  iptables -w -t nat -A "$chain" -d "$service_ip/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$port"
  iptables -w -t nat -I PREROUTING -i "$bridge" -j "$chain"
  for cmd in iptables ip6tables; do
    # Forwarding stays on the bridge.
    "$cmd" -w -N "$chain-FORWARD"
    "$cmd" -w -A "$chain-FORWARD" -i "$bridge" -o "$bridge" -j ACCEPT
    "$cmd" -w -A "$chain-FORWARD" -i "$bridge" -j DROP
    "$cmd" -w -A "$chain-FORWARD" -o "$bridge" -j DROP
    "$cmd" -w -I FORWARD -j "$chain-FORWARD"
    "$cmd" -w -N "$chain-INPUT"
  done
  # From the pods, this host answers only as the API server.
  iptables -w -A "$chain-INPUT" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -w -A "$chain-INPUT" -d 127.0.0.1/32 -p tcp --dport "$port" -m conntrack --ctstate DNAT -j ACCEPT
  iptables -w -A "$chain-INPUT" -j DROP
  ip6tables -w -A "$chain-INPUT" -j DROP
  iptables -w -I INPUT -i "$bridge" -j "$chain-INPUT"
  ip6tables -w -I INPUT -i "$bridge" -j "$chain-INPUT"
  # The Service range is this machine's fiction: nothing may try to reach it elsewhere.
  iptables -w -N "$chain-OUTPUT"
  iptables -w -A "$chain-OUTPUT" -d "$service_range" -m conntrack --ctstate NEW -j REJECT
  iptables -w -I OUTPUT -j "$chain-OUTPUT"
}

# Deletes every rule of `table`'s `parent` chain that jumps to `target`, then `target`.
remove_chain() { # command table parent target
  while "$1" -w -t "$2" -D "$3" -j "$4" 2>/dev/null; do :; done
  while "$1" -w -t "$2" -D "$3" -i "$bridge" -j "$4" 2>/dev/null; do :; done
  "$1" -w -t "$2" -F "$4" 2>/dev/null
  "$1" -w -t "$2" -X "$4" 2>/dev/null
}

down() {
  remove_chain iptables nat PREROUTING "$chain"
  for cmd in iptables ip6tables; do
    remove_chain "$cmd" filter FORWARD "$chain-FORWARD"
    remove_chain "$cmd" filter INPUT "$chain-INPUT"
  done
  remove_chain iptables filter OUTPUT "$chain-OUTPUT"
  # The pods' veths go with their network namespaces; any left (a crash) go here.
  for veth in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$veth" 2>/dev/null
  done
  ip link delete "$bridge" 2>/dev/null
  return 0
}

case ${1:-} in
  up) [ $# -eq 2 ] || usage; up "$2" ;;
  down) down ;;
  *) usage ;;
esac
