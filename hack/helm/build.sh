#!/usr/bin/env bash
# Builds Helm from its Go module (pinned in versions.env and go.mod) into a versioned cache
# outside the checkout and prints the path of the `helm` binary on stdout. Does nothing when
# it is already built.
#
#   KEYSMITH_HELM_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/helm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

graph_hash=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
cache_root=${KEYSMITH_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/helm}
bin_dir="$cache_root/${HELM_VERSION}-${graph_hash}"

if [ -x "$bin_dir/helm" ]; then
  echo "$bin_dir/helm"
  exit 0
fi

command -v go >/dev/null || { echo "helm/build.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }
echo "helm/build.sh: building Helm ${HELM_VERSION} into $bin_dir" >&2
started=$(date +%s)
mkdir -p "$cache_root"
staging_dir=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$staging_dir"' EXIT

# `helm version` reports what the ldflags say.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
ldflags="$ldflags -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

cd "$here"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging_dir/helm" helm.sh/helm/v4/cmd/helm

rm -rf "$bin_dir"
mv "$staging_dir" "$bin_dir"
trap - EXIT
echo "helm/build.sh: built in $(( $(date +%s) - started ))s" >&2
echo "$bin_dir/helm"
