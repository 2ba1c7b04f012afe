#!/usr/bin/env bash
# The test node's pod network, which never leaves this machine (README.md "The test node").
#
#   hack/node/network.sh up STATE_DIR APISERVER_PORT
#   hack/node/network.sh down STATE_DIR
#
# up: a bridge (keysmith0, 10.233.0.1/24) for the CNI bridge plugin, and these rules in chains
# of their own (KEYSMITH-NODE*), so that `down` removes exactly them:
# - forwarding is allowed only between pods on the bridge; from the bridge to any other
#   interface and from any other interface to the bridge it is dropped;
# - the only service the pods reach is the API server: 10.0.0.1:443 (the `kubernetes`
#   Service) is translated to 127.0.0.1:APISERVER_PORT (route_localnet on the bridge allows
#   that); any other packet from the bridge to this host is dropped, except the replies to
#   connections the host opened (kubelet probes, the API server's pod proxy);
# - nothing on this host may send to the Service range 10.0.0.0/24, which exists only here.
# The values of the sysctls it changes (and that the CNI bridge plugin changes:
# net.ipv4.ip_forward) are saved in STATE_DIR/sysctl.saved; `down` restores them.
#
# down is idempotent: it removes whatever of the above exists, also after a crash.
set -uo pipefail
bridge=keysmith0
gateway=10.233.0.1/24
service_ip=10.0.0.1
service_range=10.0.0.0/24
chain=KEYSMITH-NODE
sysctls=(net.ipv4.ip_forward)

usage() { echo "usage: $0 up STATE_DIR APISERVER_PORT | down STATE_DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 state=$2

up() {
  local port=$1
  set -e
  mkdir -p "$state"
  : > "$state/sysctl.saved"
  for key in "${sysctls[@]}"; do
    echo "$key=$(sysctl -n "$key")" >> "$state/sysctl.saved"
  done
  ip link add "$bridge" type bridge
  ip addr add "$gateway" dev "$bridge"
  ip link set "$bridge" up
  sysctl -q -w "net.ipv4.conf.$bridge.route_localnet=1"
  # The Service address of the API server, for the pods.
  iptables -w -t nat -N "$chain"
  iptables -w -t nat -A "$chain" -d "$service_ip/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$port"
  iptables -w -t nat -I PREROUTING -i "$bridge" -j "$chain"
  # Forwarding stays on the bridge.
  iptables -w -N "$chain-FORWARD"
  iptables -w -A "$chain-FORWARD" -i "$bridge" -o "$bridge" -j ACCEPT
  iptables -w -A "$chain-FORWARD" -i "$bridge" -j DROP
  iptables -w -A "$chain-FORWARD" -o "$bridge" -j DROP
  iptables -w -I FORWARD -j "$chain-FORWARD"
  # From the pods, this host answers only as the API server.
  iptables -w -N "$chain-INPUT"
  iptables -w -A "$chain-INPUT" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -w -A "$chain-INPUT" -d 127.0.0.1/32 -p tcp --dport "$port" -m conntrack --ctstate DNAT -j ACCEPT
  iptables -w -A "$chain-INPUT" -j DROP
  iptables -w -I INPUT -i "$bridge" -j "$chain-INPUT"
  # The Service range is this machine's fiction: nothing may try to reach it elsewhere.
  iptables -w -N "$chain-OUTPUT"
  iptables -w -A "$chain-OUTPUT" -d "$service_range" -j REJECT
  iptables -w -I OUTPUT -j "$chain-OUTPUT"
}

# Deletes every rule of `table`'s `parent` chain that jumps to `target`, then `target`.
remove_chain() { # table parent target
  while iptables -w -t "$1" -D "$2" -j "$3" 2>/dev/null; do :; done
  while iptables -w -t "$1" -D "$2" -i "$bridge" -j "$3" 2>/dev/null; do :; done
  iptables -w -t "$1" -F "$3" 2>/dev/null
  iptables -w -t "$1" -X "$3" 2>/dev/null
}

down() {
  remove_chain nat PREROUTING "$chain"
  remove_chain filter FORWARD "$chain-FORWARD"
  remove_chain filter INPUT "$chain-INPUT"
  remove_chain filter OUTPUT "$chain-OUTPUT"
  # The pods' veths go with their network namespaces; any left (a crash) go here.
  for veth in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$veth" 2>/dev/null
  done
  ip link delete "$bridge" 2>/dev/null
  if [ -s "$state/sysctl.saved" ]; then
    while IFS= read -r line; do
      sysctl -q -w "$line" >/dev/null
    done < "$state/sysctl.saved"
    rm -f "$state/sysctl.saved"
  fi
  return 0
}

case $action in
  up) [ $# -eq 3 ] || usage; up "$3" ;;
  down) down ;;
  *) usage ;;
esac
