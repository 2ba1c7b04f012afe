#!/usr/bin/env bash
# Regenerates go.mod for the pinned Kubernetes release.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
# paths, so a module that builds it must replace each of them with the published v0.X.Y.
# Usage: hack/controlplane/gen-go-mod.sh   (reads the versions from versions.env)
set -euo pipefail
cd "$(dirname "$0")"
source ./versions.env
staging_version="v0.${KUBERNETES_VERSION#v1.}"
kube_mod=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
mapfile -t staging < <(go mod edit -json "$kube_mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["Require"]:
    if r["Version"] == "v0.0.0" and r["Path"].startswith("k8s.io/"):
        print(r["Path"])')
rm -f go.mod go.sum
go mod init keysmith.dev/hack/controlplane
go mod edit -go=1.26.0 -require="k8s.io/kubernetes@${KUBERNETES_VERSION}"
for m in "${staging[@]}"; do
  go mod edit -replace="${m}=${m}@${staging_version}"
done
go mod edit -tool=k8s.io/kubernetes/cmd/kube-apiserver \
  -tool=k8s.io/kubernetes/cmd/kube-controller-manager \
  -tool=k8s.io/kubernetes/cmd/kubectl \
  -tool=k8s.io/kubernetes/cmd/kube-scheduler \
  -tool=k8s.io/kubernetes/cmd/kubelet \
  -tool=go.etcd.io/etcd/server/v3
go mod tidy
