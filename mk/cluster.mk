# A local control plane for trying the operator by hand: a real etcd and
# kube-apiserver on loopback ports (no nodes, no controller-manager), kept alive by
# a background `testbed` supervisor. Included from the main Makefile.

CLUSTER_DIR ?= .cluster

.PHONY: cluster-up cluster-down

## cluster-up: start etcd + kube-apiserver in $(CLUSTER_DIR) (builds the tools on first use)
cluster-up:
	tests/controlplane/build.sh >/dev/null
	cargo run -q -p testbed -- up --detach --dir $(CLUSTER_DIR)
	@echo "Now run: source $(CLUSTER_DIR)/env   (sets KUBECONFIG and puts kubectl and helm on PATH)"

## cluster-down: stop the control plane in $(CLUSTER_DIR) (its logs stay in $(CLUSTER_DIR)/logs)
cluster-down:
	cargo run -q -p testbed -- down --dir $(CLUSTER_DIR)
