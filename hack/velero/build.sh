#!/usr/bin/env bash
# Builds Velero (server and CLI are one binary), its AWS object store plugin and MinIO (a local
# S3 store for the backups) from the Go module proxy into a versioned cache outside the
# checkout, and prints the directory holding them on stdout. Does nothing when they are
# already built. The directory holds:
#   velero                          server and CLI
#   minio                           S3 server
#   plugins/velero-plugin-for-aws   for `velero server --plugin-dir <dir>/plugins`
#                                   (Velero runs every executable of that directory as a plugin)
#
#   KEYSMITH_VELERO_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/velero)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

# The directory name changes whenever the pinned versions, the module graph or this script
# (its build flags) change; Go's build cache makes such a rebuild mostly a relink.
graph_hash=$(cat "$here/versions.env" "$here/go.mod" "$here/go.sum" "$here/build.sh" |
  sha256sum | cut -c1-12)
cache_root=${KEYSMITH_VELERO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/velero}
bin_dir="$cache_root/${VELERO_VERSION}-aws${VELERO_PLUGIN_FOR_AWS_VERSION#v}-${graph_hash}"
binaries=(velero minio plugins/velero-plugin-for-aws)

complete() {
  for b in "${binaries[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
}

if complete; then
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "velero/build.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }
echo "velero/build.sh: building Velero ${VELERO_VERSION} into $bin_dir (takes a while once)" >&2
started=$(date +%s)
mkdir -p "$cache_root"
staging_dir=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$staging_dir"' EXIT
mkdir "$staging_dir/plugins"

# `velero version` reports what the ldflags say (Velero's hack/build.sh sets the same).
pkg=github.com/vmware-tanzu/velero/pkg/buildinfo
ldflags="-s -w -X $pkg.Version=${VELERO_VERSION} -X $pkg.GitTreeState=clean"
# `velero server` leaves controller-runtime's metrics server at its default, :8080 on every
# interface, and has no flag for it (Velero's own metrics are --metrics-address). "0" turns
# it off, so servers never fight over the port and nothing listens beyond 127.0.0.1.
ldflags="$ldflags -X sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress=0"

cd "$here"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging_dir/velero" \
  github.com/vmware-tanzu/velero/cmd/velero
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$staging_dir/plugins/velero-plugin-for-aws" \
  github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws
echo "velero/build.sh: Velero and plugin built after $(( $(date +%s) - started ))s" >&2

# MinIO's go.mod has no replace directives, so `go install` builds it from its own go.mod and
# go.sum (checked against the checksum database), outside this wrapper module.
GOBIN="$staging_dir" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "github.com/minio/minio@${MINIO_VERSION}"

rm -rf "$bin_dir"
mv "$staging_dir" "$bin_dir"
trap - EXIT
echo "velero/build.sh: built in $(( $(date +%s) - started ))s" >&2
echo "$bin_dir"
