#!/usr/bin/env bash
# Builds what the test node (tests/support/node.rs, README.md "The test node") needs beyond
# Debian's containerd, runc and CNI plugins, and prints the directory that holds it:
#
#   pause.oci.tar  the sandbox image, built from Kubernetes' own build/pause/linux/pause.c of
#                  the pinned release (static, with musl-gcc) and packed by hack/oci-archive.sh
#   pause.ref      its reference, registry.k8s.io/pause:<the release's pause tag>
#
# kubelet and kube-scheduler are built with the control plane (hack/controlplane/build.sh).
# Does nothing when the cache already has the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/hack/controlplane/versions.env"
out=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith/node/$KUBERNETES_VERSION

missing=()
for tool in containerd containerd-shim-runc-v2 ctr runc iptables ip musl-gcc umoci; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
  missing+=(CNI-plugins)
if [ ${#missing[@]} -gt 0 ]; then
  echo "node/build.sh: missing ${missing[*]}: run hack/install-deps.sh" >&2
  exit 1
fi

if [ -s "$out/pause.oci.tar" ] && [ -s "$out/pause.ref" ]; then
  echo "$out"
  exit 0
fi

# The Kubernetes source of the pinned release, from the Go module cache (the control plane
# build downloads it; this fetches it when it is not there yet).
source_dir=$(cd "$repo/hack/controlplane" &&
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
pause_dir=$source_dir/build/pause
tag=$(sed -n 's/^TAG ?= *//p' "$pause_dir/Makefile")
[ -n "$tag" ] || { echo "node/build.sh: no TAG in $pause_dir/Makefile" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/keysmith-pause.XXXXXX")
trap 'rm -rf "$work"' EXIT
install -d -m 0755 "$work/rootfs"
# Kubernetes' own flags (build/pause/Makefile), with musl instead of a glibc cross compiler.
musl-gcc -Os -Wall -Werror -static -DVERSION="v$tag-keysmith" -o "$work/rootfs/pause" \
  "$pause_dir/linux/pause.c"
strip "$work/rootfs/pause"
chmod 0755 "$work/rootfs/pause"
reference=registry.k8s.io/pause:$tag
mkdir -p "$out"
# As build/pause/Dockerfile: the binary alone, user 65535, entrypoint /pause.
"$repo/hack/oci-archive.sh" "$work/rootfs" "$out/pause.oci.tar" "$reference" \
  --config.user 65535:65535 --config.entrypoint /pause >/dev/null
echo "$reference" > "$out/pause.ref"
echo "node/build.sh: built $reference from $pause_dir/linux/pause.c" >&2
echo "$out"
