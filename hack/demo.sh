#!/usr/bin/env bash
# `make demo`: on a fresh machine, installs what is missing, builds the control plane, Helm and
# keysmith, starts the local control plane, installs the chart's CRDs and RBAC, runs the
# operator with the chart's ServiceAccount, applies examples/ and prints `keysmith status -A`.
# Everything it starts is stopped at the end; DEMO_KEEP=1 keeps it running until Enter.
# DEMO_NODE=1 (as root): the operator runs as the chart's pods, from the image hack/image.sh
# builds, on a real node (kubelet + containerd; README.md "The test node").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/target}
hack/install-deps.sh
KEYSMITH_CONTROLPLANE_BIN=$(hack/controlplane/build.sh)
KEYSMITH_HELM=$(hack/helm/build.sh)
export KEYSMITH_CONTROLPLANE_BIN KEYSMITH_HELM
if [ -n "${DEMO_NODE:-}" ]; then
  KEYSMITH_IMAGE=$(hack/image.sh)
  export KEYSMITH_IMAGE
  exec cargo test --quiet --test node -- --ignored --exact by_hand::demo_on_a_real_node --nocapture
fi
exec cargo test --quiet --test e2e -- --ignored --exact by_hand::demo --nocapture
