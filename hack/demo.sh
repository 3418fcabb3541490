#!/usr/bin/env bash
# The local demo: a real etcd + kube-apiserver, the Tencent Cloud API emulator seeded
# with the API document's examples, the operator, and the example bindings. Everything
# runs on loopback and stays up until `make demo-down`.
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
  stop_pidfile "$demo/operator.pid"
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
  echo "==> building the operator, the emulator and the test bed"
  $cargo build -q --locked -p edgeone-cert-operator -p teo-emulator -p testbed

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

  echo "==> starting the operator (credentials: the seed's demo account)"
  kubectl apply -f "$root/crds/" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd/edgeonecertificatebindings.edgeone.operators.dev >/dev/null
  TENCENTCLOUD_SECRET_ID=AKIDdemo0000000000000000000000000000 \
  TENCENTCLOUD_SECRET_KEY=demo-secret-key-not-a-real-credential \
    nohup "$root/target/debug/edgeone-cert-operator" run --kubeconfig "$KUBECONFIG" \
      --teo-endpoint "$emulator_url" --ssl-endpoint "$emulator_url" --sts-endpoint "$emulator_url" --health-addr 127.0.0.1:0 \
      >"$demo/operator.log" 2>&1 &
  echo $! >"$demo/operator.pid"

  echo "==> applying the example bindings (examples/) in namespace demo"
  kubectl create namespace demo >/dev/null
  kubectl apply -n demo -f "$root/examples/"
  if ! kubectl wait -n demo --for=condition=Ready --timeout=90s edgeonecertificatebindings --all >/dev/null; then
    echo "the bindings did not become Ready; see $demo/operator.log and kubectl describe eocb -n demo" >&2
  fi

  echo
  echo "Control plane:   export KUBECONFIG=$KUBECONFIG  (or: source .demo/cluster/env)"
  echo "Emulator:        $emulator_url   (state: curl $emulator_url/admin/state)"
  echo "Operator log:    .demo/operator.log"
  echo "Try:             kubectl describe eocb -n demo abc-test-com"
  echo "Stop with:       make demo-down"
  echo
  kubectl get edgeonecertificatebindings -A
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
