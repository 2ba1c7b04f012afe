#!/usr/bin/env bash
# Reconcile throughput, API cost and memory at scale on the local control plane
# (tests/e2e/bench.rs): N resources over 10 namespaces, the operator (release build, the Helm
# chart's flags and RBAC) until all are Ready, a restart over them, and a bare client that
# writes the same Secrets and status patches as the floor. Prints Markdown tables.
#
# usage: bench/reconcile.sh [sizes] [loads]    (default: "100,1000" "ckp,mixed")
#   e.g. bench/reconcile.sh 100,1000,10000 ckp
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/keysmith/target}
export BENCH_SIZES=${1:-100,1000}
export BENCH_LOADS=${2:-ckp,mixed}
KEYSMITH_CONTROLPLANE_BIN=$(hack/controlplane/build.sh)
KEYSMITH_HELM=$(hack/helm/build.sh)
export KEYSMITH_CONTROLPLANE_BIN KEYSMITH_HELM
cargo build --release --quiet --bin keysmith
export KEYSMITH_OPERATOR_BIN=$CARGO_TARGET_DIR/release/keysmith
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
  "keysmith $(git describe --always --dirty); Kubernetes $(grep KUBERNETES_VERSION hack/controlplane/versions.env | cut -d= -f2)"
exec cargo test --quiet --test e2e -- --ignored --exact bench::reconcile --nocapture
