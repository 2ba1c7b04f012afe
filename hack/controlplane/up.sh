#!/usr/bin/env bash
# Starts the test control plane (etcd + kube-apiserver + kube-controller-manager) by hand,
# exactly as the tests do, and keeps it running until you press Enter or Ctrl-C.
# It prints an `export KUBECONFIG=...` line for kubectl in another terminal.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/target}
KEYSMITH_CONTROLPLANE_BIN=$(hack/controlplane/build.sh)
export KEYSMITH_CONTROLPLANE_BIN
echo "kubectl of the same release: $KEYSMITH_CONTROLPLANE_BIN/kubectl"
exec cargo test --quiet --test e2e -- --ignored --exact by_hand::serve_control_plane_until_enter --nocapture
