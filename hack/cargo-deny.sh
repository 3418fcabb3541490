#!/usr/bin/env bash
# Supply-chain check: licenses, bans and sources of every crate in Cargo.lock, with
# cargo-deny at a pinned version, built once from crates.io into the user cache.
# Advisories are not checked here: they need the RustSec database from GitHub, which
# this project's machines cannot reach (see README, "Supply chain").
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.20.2
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/edgeone-cert-operator/cargo-deny-$VERSION"
if [[ ! -x "$ROOT/bin/cargo-deny" ]]; then
    mkdir -p "$ROOT"
    # One builder at a time; a second caller waits, then finds the binary.
    exec 9>"$ROOT.lock"
    flock 9
    if [[ ! -x "$ROOT/bin/cargo-deny" ]]; then
        echo "cargo-deny.sh: building cargo-deny $VERSION (first time only, a few minutes)" >&2
        cargo install --quiet --locked --version "$VERSION" --root "$ROOT" cargo-deny >&2
    fi
fi
exec "$ROOT/bin/cargo-deny" --locked --workspace check --show-stats licenses bans sources
