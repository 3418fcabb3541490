#!/usr/bin/env bash
# The local demo: a real etcd + kube-apiserver, the Tencent Cloud API emulator seeded
# with the API document's examples, and (once it exists) the operator with the example
# bindings. Everything runs on loopback and stays up until `make demo-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo="$root/.demo"
cargo=${CARGO:-cargo}

stop_pidfile() { # pidfile
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

down() {
  stop_pidfile "$demo/emulator.pid"
  if [[ -f "$demo/cluster/testbed.pid" ]]; then
    "$root/target/debug/testbed" down --dir "$demo/cluster" || true
  fi
  rm -rf "$demo"
  echo "demo stopped"
}

up() {
  if [[ -d $demo ]]; then
    echo "a demo is already set up in .demo; run 'make demo-down' first" >&2
    exit 1
  fi
  mkdir -p "$demo"
  echo "==> building the emulator and the test bed"
  $cargo build -q --locked -p teo-emulator -p testbed

  echo "==> starting etcd + kube-apiserver (pinned, built from the official Go modules)"
  "$root/target/debug/testbed" up --detach --dir "$demo/cluster"
  # shellcheck disable=SC1091
  source "$demo/cluster/env"

  echo "==> starting the Tencent Cloud API emulator (seed: emulator/seeds/demo.json)"
  nohup "$root/target/debug/teo-emulator" --seed "$root/emulator/seeds/demo.json" \
    --address-file "$demo/emulator.url" >"$demo/emulator.log" 2>&1 &
  echo $! >"$demo/emulator.pid"
  for _ in $(seq 100); do [[ -s "$demo/emulator.url" ]] && break; sleep 0.1; done
  [[ -s "$demo/emulator.url" ]] || { echo "the emulator did not start; see $demo/emulator.log" >&2; exit 1; }
  emulator_url=$(cat "$demo/emulator.url")

  echo
  kubectl version 2>/dev/null | sed 's/^/    /'
  kubectl get namespaces
  echo
  echo "Control plane:   export KUBECONFIG=$KUBECONFIG  (or: source .demo/cluster/env)"
  echo "Emulator:        $emulator_url   (state: curl $emulator_url/admin/state)"
  echo "Seed account:    SecretId AKIDdemo0000000000000000000000000000 (see emulator/seeds/demo.json)"
  echo
  echo "The operator itself is not built yet (issue #3), so the demo stops at the control"
  echo "plane and the emulator. Stop everything with: make demo-down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
