#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack. Idempotent and quick when
# everything is present: apt-get runs only if a command is missing.
set -euo pipefail

# command -> Debian package providing it
declare -A apt_packages=(
  [openssl]=openssl
  [git]=git
)

missing=()
for cmd in "${!apt_packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${apt_packages[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in go cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool is required (see README.md)" >&2; exit 1; }
done
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 ||
    rustup component add "$component"
done
