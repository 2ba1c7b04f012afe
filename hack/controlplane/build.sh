#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) and
# the node's kube-scheduler and kubelet (hack/node/)
# from the Go module proxy into a versioned cache outside the checkout, and prints the
# directory holding the binaries on stdout. Does nothing when they are already built.
#
#   KEYSMITH_CONTROLPLANE_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/controlplane)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

# The directory name changes whenever the pinned versions or the module graph change.
graph_hash=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
cache_root=${KEYSMITH_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/controlplane}
bin_dir="$cache_root/${KUBERNETES_VERSION}-${graph_hash}"
binaries=(etcd kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet)

complete() {
  for b in "${binaries[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
}

if complete; then
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }
echo "build.sh: building control plane ${KUBERNETES_VERSION} into $bin_dir (takes a while once)" >&2
started=$(date +%s)
mkdir -p "$cache_root"
staging_dir=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$staging_dir"' EXIT

minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"

cd "$here"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging_dir/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet \
  go.etcd.io/etcd/server/v3
# Go names a binary after the last path element that is not a major-version suffix.
mv "$staging_dir/server" "$staging_dir/etcd"

rm -rf "$bin_dir"
mv "$staging_dir" "$bin_dir"
trap - EXIT
echo "build.sh: built in $(( $(date +%s) - started ))s" >&2
echo "$bin_dir"
