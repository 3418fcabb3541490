#!/usr/bin/env bash
# Prints the path of a virtualenv holding tests/sdk/requirements.txt, creating it on
# first use. The venv lives in the user cache (never in the repo) under a name keyed by
# the requirements' hash, so editing the pins yields a new venv and an unchanged file
# reuses the old one without touching the network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"

if ! command -v python3 >/dev/null 2>&1; then
    echo "venv.sh: python3 is not installed; the SDK conformance tests need Python >= 3.10 with the venv module" >&2
    exit 1
fi

hash="$(sha256sum "$requirements" | cut -c1-12)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/edgeone-cert-operator/sdk-venv-$hash"
# Written only after pip succeeded: a venv without it is a half-done install to redo.
marker="$venv/.requirements-installed"

if [ ! -f "$marker" ]; then
    mkdir -p "$(dirname "$venv")"
    # Serialise concurrent first runs (e.g. two make invocations) on the same venv.
    exec 9>"$venv.lock"
    flock 9
    if [ ! -f "$marker" ]; then
        rm -rf "$venv"
        echo "venv.sh: creating $venv" >&2
        python3 -m venv "$venv" >&2 || {
            echo "venv.sh: 'python3 -m venv' failed; install the venv module (e.g. apt-get install python3-venv)" >&2
            exit 1
        }
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
        cp "$requirements" "$marker"
    fi
fi
echo "$venv"
