#!/usr/bin/env bash
# The one test command (README.md; .ci/run calls it). Installs what is missing, builds the
# test control plane (with the node's kubelet and kube-scheduler), the operator image and
# Velero with MinIO (the backup/restore test) once into caches outside the checkout, checks formatting and lints, runs every test (the node
# tests need root), fails if any control-plane process or anything of a test node outlived
# the tests, then fuzzes (hack/fuzz.sh) and checks the supply chain (hack/deny.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*" >&2; }
# Runs "$@", prints how long it took, and returns its exit status.
timed() {
  local t=$SECONDS rc=0
  "$@" || rc=$?
  echo "    ($(( SECONDS - t ))s)" >&2
  return $rc
}

step "dependencies"
timed hack/install-deps.sh

step "control plane (hack/controlplane/build.sh)"
KEYSMITH_CONTROLPLANE_BIN=$(hack/controlplane/build.sh)
export KEYSMITH_CONTROLPLANE_BIN
step "helm (hack/helm/build.sh)"
KEYSMITH_HELM=$(hack/helm/build.sh)
export KEYSMITH_HELM
step "image (hack/image.sh)"
KEYSMITH_IMAGE=$(timed hack/image.sh)
export KEYSMITH_IMAGE
step "node (hack/node/build.sh)"
timed hack/node/build.sh >/dev/null
step "velero and minio (hack/velero/build.sh)"
KEYSMITH_VELERO_BIN=$(timed hack/velero/build.sh)
export KEYSMITH_VELERO_BIN

# Processes of the control plane and operator binaries the tests start. Those running before
# the tests (e.g. hack/controlplane/up.sh in another terminal) are not ours to judge.
control_plane_pids() {
  { pgrep -f "^$KEYSMITH_CONTROLPLANE_BIN/" || true; pgrep -f "^$KEYSMITH_VELERO_BIN/" || true; pgrep -f "^$CARGO_TARGET_DIR/debug/keysmith run" || true; pgrep -f "hack/kmip/run_server.py" || true; } | sort
}
before=$(control_plane_pids)
# What a test node could leave behind (processes, mounts, iptables rules, links, cgroups,
# network namespaces, sysctls): compared after the tests. Taken under the node lock, so a
# node of another run on this machine is not mistaken for ours.
node_lock=/run/lock/keysmith-node.lock
mkdir -p "$(dirname "$node_lock")"
host_state() { flock "$node_lock" hack/node/host-state.sh; }
host_before=$(host_state)

step "cargo fmt --check"
timed cargo fmt --all -- --check
step "cargo clippy -D warnings"
timed cargo clippy --locked --all-targets -- -D warnings
step "cargo test"
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timed cargo test --locked 2>&1 | tee "$log" || status=$?

step "no control-plane or operator process outlives the tests"
leftover=$(comm -13 <(echo "$before") <(control_plane_pids) | grep . || true)
if [ -n "$leftover" ]; then
  echo "left running after the tests:" >&2
  ps -o pid=,args= -p $leftover >&2 || true
  kill -9 $leftover 2>/dev/null || true
  status=1
else
  echo "    none" >&2
fi
step "no process, mount, rule, cgroup or device of a test node outlives the tests"
host_left=$(diff <(echo "$host_before") <(host_state) | grep '^[<>]' || true)
if [ -n "$host_left" ]; then
  echo "left behind (> new, < gone):" >&2
  echo "$host_left" >&2
  # Nodes whose test binary is gone (a node of a live process is not ours to remove).
  for dir in "${TMPDIR:-/tmp}"/keysmith-node-*; do
    owner=$(cat "$dir/owner.pid" 2>/dev/null || true)
    if [ -z "$owner" ] || ! kill -0 "$owner" 2>/dev/null; then
      flock "$node_lock" hack/node/teardown.sh "$dir" 2>&1 | sed 's/^/    /' >&2 || true
    fi
  done
  status=1
else
  echo "    none" >&2
fi
step "fuzzing (hack/fuzz.sh)"
timed hack/fuzz.sh || status=1
step "supply chain (hack/deny.sh)"
timed hack/deny.sh || status=1

# One closing line over every test binary (the last binary cargo runs, the doc-tests, has none).
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit $status
