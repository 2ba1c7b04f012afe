#!/usr/bin/env bash
# Builds the operator image without a container engine (README.md "The image"), and prints
# the path of the OCI archive on stdout.
#
# 1. The binary: `cargo auditable build --release` for x86_64-unknown-linux-musl, fully
#    static, with the dependency list embedded (cargo-auditable) and no build paths.
# 2. The file system: the binary, /etc/passwd and /etc/group with the nonroot user 65532, the
#    build machine's CA bundle and an empty /tmp, as one layer made by GNU tar with sorted
#    names, fixed owners and the commit's timestamp.
# 3. The image: hack/oci-archive.sh packs that file system into a one-layer OCI archive with
#    GNU tar and umoci (the OCI project's image tool, a Debian package), configured as the
#    Dockerfile's image is (user, entrypoint, args, exposed ports, labels). `ctr images
#    import`, `skopeo copy oci-archive:...`, `podman load` and `kind load image-archive`
#    read it.
# 4. The SBOM: auditable2cdx reads the dependency list back out of the binary that ships and
#    writes it as CycloneDX JSON next to the archive.
#
# Every timestamp is the commit's (SOURCE_DATE_EPOCH), so one commit always gives one image
# digest with the same toolchain (tests/node/image.rs checks that the assembly is
# reproducible).
#
#   IMAGE_OUT_DIR      where the archive and SBOM go (default ~/.cache/keysmith/image)
#   IMAGE_REPOSITORY   the image name (default ghcr.io/keysmith-dev/keysmith)
#   IMAGE_TAG          its tag (default: the crate version)
#   SOURCE_DATE_EPOCH  timestamp of every file and of the image (default: the commit time)
set -euo pipefail
# Modes of the image's files do not depend on who builds it.
umask 022
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keysmith
tools=$cache/tools
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH=$tools/bin:$PATH
target=x86_64-unknown-linux-musl
cargo_auditable_version=0.7.7
auditable2cdx_version=0.1.0
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
repository=${IMAGE_REPOSITORY:-ghcr.io/keysmith-dev/keysmith}
tag=${IMAGE_TAG:-$version}
out_dir=${IMAGE_OUT_DIR:-$cache/image}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

log() { printf 'image: %s\n' "$*" >&2; }

for tool in umoci tar musl-gcc readelf python3; do
  command -v "$tool" >/dev/null || {
    log "$tool is missing: run hack/install-deps.sh"; exit 1; }
done
# Neither tool prints its version: cargo install's own record says what is installed.
install_tool() { # crate version binary
  if ! { [ -x "$tools/bin/$3" ] && grep -qF "\"$1 $2 (" "$tools/.crates.toml" 2>/dev/null; }; then
    log "installing $1 $2 into $tools"
    cargo install --locked --quiet --root "$tools" "$1" --version "$2"
  fi
}
install_tool cargo-auditable "$cargo_auditable_version" cargo-auditable
install_tool auditable2cdx "$auditable2cdx_version" auditable2cdx
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"

# --- 1. the binary -------------------------------------------------------------------------
# Absolute paths of the cargo home and the target directory are rewritten in Rust's panic
# locations and in the C code of aws-lc and jemalloc (assert's __FILE__), so the binary does
# not depend on where it was built. The checkout's own files are compiled by relative paths
# (src/...) and need no rewriting; leaving its location out of RUSTFLAGS keeps the build
# cache valid for every clone.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$CARGO_TARGET_DIR=/target"
prefix_map="-ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$CARGO_TARGET_DIR=/target"
export CFLAGS_x86_64_unknown_linux_musl=$prefix_map
export CXXFLAGS_x86_64_unknown_linux_musl=$prefix_map
start=$SECONDS
log "cargo auditable build --release --target $target (commit ${revision:0:12})"
cargo auditable build --release --locked --target "$target" --bin keysmith
log "binary built in $(( SECONDS - start ))s"
binary=$CARGO_TARGET_DIR/$target/release/keysmith
if readelf -d "$binary" | grep -q NEEDED; then
  log "$binary needs shared libraries:"; readelf -d "$binary" >&2; exit 1
fi

# --- 2. the file system --------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/keysmith-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
install -d -m 0755 "$rootfs" "$rootfs/etc" "$rootfs/etc/ssl" "$rootfs/etc/ssl/certs"
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/keysmith"
install -d -m 1777 "$rootfs/tmp"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

# --- 3. the image --------------------------------------------------------------------------
# The configuration of the Dockerfile's image; tests/node/image.rs compares the two.
config=(
  --architecture amd64 --os linux
  --config.user 65532:65532 --config.entrypoint /usr/local/bin/keysmith --config.cmd run
  --config.exposedports 8080/tcp --config.exposedports 8081/tcp
  --config.env PATH=/usr/local/bin
  --config.label "org.opencontainers.image.title=keysmith"
  --config.label "org.opencontainers.image.description=Kubernetes operator that generates and manages secret material"
  --config.label "org.opencontainers.image.version=$version"
  --config.label "org.opencontainers.image.revision=$revision"
  --config.label "org.opencontainers.image.source=https://github.com/keysmith-dev/keysmith"
  --config.label "org.opencontainers.image.licenses=Apache-2.0"
)
mkdir -p "$out_dir"
archive=$out_dir/keysmith-$tag.oci.tar
manifest_digest=$(hack/oci-archive.sh "$rootfs" "$archive" "$repository:$tag" "${config[@]}")

# --- 4. the SBOM ---------------------------------------------------------------------------
auditable2cdx "$binary" > "$out_dir/keysmith-$tag.cdx.json.tmp"
mv "$out_dir/keysmith-$tag.cdx.json.tmp" "$out_dir/keysmith-$tag.cdx.json"
printf '%s\n' "$manifest_digest" > "$out_dir/keysmith-$tag.digest"

log "$repository:$tag $manifest_digest"
log "  archive $(du -h "$archive" | cut -f1) ($archive), binary $(du -h "$binary" | cut -f1)"
log "  SBOM $out_dir/keysmith-$tag.cdx.json ($(grep -o '"bom-ref"' "$out_dir/keysmith-$tag.cdx.json" | wc -l) components)"
echo "$archive"
