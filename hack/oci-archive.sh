#!/usr/bin/env bash
# Packs a root file system directory into a single-layer OCI image archive, reproducibly.
#
#   hack/oci-archive.sh ROOTFS ARCHIVE REFERENCE [umoci config options...]
#
# File modes and the root directory's mode come from ROOTFS; owners become root.
# REFERENCE is the full image name (`registry/repository:tag`); the options are umoci's
# (`--config.user 65532:65532`, `--config.entrypoint ...`, `--config.label k=v`, ...).
# Prints the manifest digest on stdout.
#
# Used by hack/image.sh (the operator) and hack/node/build.sh (the pause image).
#
# GNU tar makes the layer and the archive with the reproducible-builds.org recipe (sorted
# names, numeric root owner, one mtime, no atime/ctime); umoci, the OCI project's own image
# tool (Debian's `umoci`), writes the image layout in between. Every timestamp is
# $SOURCE_DATE_EPOCH (default 0), so the same files always give the same digest. Hand-written
# tar or manifest code is not needed: these two tools exist for exactly this.
set -euo pipefail
umask 022
[ $# -ge 3 ] || { echo "usage: $0 ROOTFS ARCHIVE REFERENCE [umoci config options...]" >&2; exit 2; }
rootfs=$1 archive=$2 reference=$3
shift 3
epoch=${SOURCE_DATE_EPOCH:-0}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
for tool in umoci tar python3; do
  command -v "$tool" >/dev/null || { echo "oci-archive: $tool is missing: run hack/install-deps.sh" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/keysmith-oci.XXXXXX")
trap 'rm -rf "$work"' EXIT

deterministic_tar() { # archive dir
  tar --create --file "$1" --directory "$2" --sort=name --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --no-acls \
    --no-xattrs --no-selinux .
}

deterministic_tar "$work/layer.tar" "$rootfs"
layout=$work/layout
tag=image
umoci init --layout "$layout" >&2
umoci new --image "$layout:$tag" >&2
umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
  --history.created_by "hack/oci-archive.sh: $(basename "$reference")" "$work/layer.tar" >&2
umoci config --image "$layout:$tag" --created "$created" --history.created "$created" \
  --history.created_by "hack/oci-archive.sh: configuration" "$@" >&2
# umoci names the manifest by a tag only; containerd (`ctr images import`), skopeo, podman
# and kind read the full reference from the same annotation.
python3 - "$layout/index.json" "$reference" <<'EOF'
import json, sys
path, reference = sys.argv[1], sys.argv[2]
with open(path) as f:
    index = json.load(f)
for manifest in index["manifests"]:
    manifest.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = reference
with open(path, "w") as f:
    json.dump(index, f, separators=(",", ":"), sort_keys=True)
print(index["manifests"][0]["digest"])
EOF
# The blobs of the intermediate images (empty, then without configuration) go.
umoci gc --layout "$layout" >&2
chmod -R a+rX "$layout"
find "$layout" -exec touch -h -d "@$epoch" {} +
mkdir -p "$(dirname "$archive")"
deterministic_tar "$archive.tmp" "$layout"
mv "$archive.tmp" "$archive"
