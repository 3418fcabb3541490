#!/usr/bin/env bash
# Prints the directory of cert-manager's CRDs, read from the official Go module at a
# pinned release in the Go module cache (downloaded on first use, never copied into the
# repository). The end-to-end tests apply them to the test control plane.
set -euo pipefail
CERT_MANAGER_VERSION=v1.21.2
command -v go >/dev/null || { echo "crds.sh: Go is needed to fetch cert-manager's CRDs" >&2; exit 1; }
dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$dir/deploy/crds" ]] || { echo "crds.sh: no deploy/crds in $dir" >&2; exit 1; }
echo "$dir/deploy/crds"
