#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack. Idempotent and quick when
# everything is present: apt-get runs only if a command is missing.
set -euo pipefail

# command -> Debian package providing it
declare -A apt_packages=(
  [openssl]=openssl
  [git]=git
  [ssh-keygen]=openssh-client
  [ssh]=openssh-client
  [/usr/sbin/sshd]=openssh-server
  [openvpn]=openvpn
  [htpasswd]=apache2-utils
  [python3]=python3
  [lua5.1]=lua5.1
  # The image (hack/image.sh, hack/oci-archive.sh): musl for the static binary, umoci for
  # the OCI layout.
  [musl-gcc]=musl-tools
  [umoci]=umoci
  # The test node (hack/node/): container runtime, CNI plugins, the pod network's rules.
  [containerd]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [ip]=iproute2
)

missing=()
for cmd in "${!apt_packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("${apt_packages[$cmd]}")
done
# The KMIP tests run PyKMIP in a virtualenv (hack/kmip/venv.sh): `python3 -m venv` needs
# ensurepip, which Debian ships separately in python3-venv (with the pip wheel it installs).
# The image's CA bundle.
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start services (openssh-server would start sshd on port 22, containerd
  # its system daemon): the tests start their own sshd and containerd.
  policy=/usr/sbin/policy-rc.d
  added_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=true
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if $added_policy; then rm -f "$policy"; fi
fi

for tool in go cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool is required (see README.md)" >&2; exit 1; }
done
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 ||
    rustup component add "$component"
done
