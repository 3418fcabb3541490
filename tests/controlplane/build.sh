#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, etcd and helm from the Go modules pinned in go.mod,
# with their version strings set, into a cache outside the repository keyed by the
# versions and go.sum. A second run finds the binaries and builds nothing.
#
# Prints the bin directory on stdout (everything else goes to stderr).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

# The pinned versions, read from go.mod so there is one place to change them.
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod; }
KUBE_VERSION=$(mod_version k8s.io/kubernetes)
ETCD_VERSION=$(mod_version go.etcd.io/etcd/server/v3)
HELM_VERSION=$(mod_version helm.sh/helm/v4)
: "${KUBE_VERSION:?no k8s.io/kubernetes in go.mod}" "${ETCD_VERSION:?}" "${HELM_VERSION:?}"

sum=$(cat go.mod go.sum build.sh | sha256sum | cut -c1-12)
cache_root=${EDGEONE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeone-cert-operator}
bin="$cache_root/controlplane/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-$sum/bin"
tools=(kube-apiserver kubectl etcd helm)

have_all() { for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || return 1; done; }
if have_all; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build the control plane (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$bin"
# One build at a time per cache: a second `make test` waits instead of racing.
exec 9>"$bin/.lock"
flock 9
if have_all; then echo "$bin"; exit 0; fi

start=$(date +%s)
major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
kube_ldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # name package ldflags
  local name=$1 pkg=$2 ldflags=$3
  [[ -x "$bin/$name" ]] && return 0
  echo "build.sh: building $name from $pkg" >&2
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$bin/$name.tmp" "$pkg"
  mv "$bin/$name.tmp" "$bin/$name"
}

build etcd go.etcd.io/etcd/server/v3 ""
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kubectl k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
build helm helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

echo "build.sh: built ${tools[*]} in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
