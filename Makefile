# edgeone-cert-operator: the two commands a newcomer needs are `make demo` and `make test`.
# Everything they need is installed or built by the targets below; built tools are cached
# outside the repository (~/.cache/edgeone-cert-operator), keyed by version.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: help test demo demo-down tools check-toolchains fmt-check clippy supply-chain unit-and-e2e release

help:
	@echo "make demo        local control plane + Tencent Cloud API emulator + operator + example bindings"
	@echo "make demo-down   stop what make demo started"
	@echo "make test        every check: fmt, clippy, supply chain, unit tests, end-to-end tests, SDK conformance"
	@echo "make tools       build the pinned kube-apiserver, etcd, kubectl and helm (cached)"
	@echo "make crds        regenerate crds/ from the Rust types"
	@echo "make cluster-up / cluster-down   a control plane for your own experiments"
	@echo "make bench       the scale benchmark (cold start, renewal wave, steady state; ~15 min)"
	@echo "make chaos       the long fault-injection soak (not part of make test)"
	@echo "make deploy-manifests / chart-lint   render deploy/ from the chart / lint the chart"

check-toolchains:
	@command -v $(CARGO) >/dev/null || { echo "Rust (cargo) is required: https://rustup.rs"; exit 1; }
	@command -v go >/dev/null || { echo "Go >= 1.26 is required to build the control plane: https://go.dev/dl"; exit 1; }
	@command -v python3 >/dev/null || { echo "python3 is required for the SDK conformance test"; exit 1; }

# Builds (first time, ~10 min on 2 cores) or finds the pinned control-plane tools.
tools: check-toolchains
	@tests/controlplane/build.sh >/dev/null

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Licenses, bans and sources of every crate (cargo-deny, built once into the cache).
supply-chain:
	hack/cargo-deny.sh

# Unit tests and the end-to-end tests (which start their own etcd + kube-apiserver).
unit-and-e2e: tools
	$(CARGO) test --workspace --locked

test: check-toolchains fmt-check clippy supply-chain unit-and-e2e test-sdk
	@echo "make test: all checks passed"

# The release build, the same command the Dockerfile runs.
release:
	$(CARGO) build --release --locked -p edgeone-cert-operator

demo: tools
	@hack/demo.sh up

demo-down:
	@hack/demo.sh down

include mk/*.mk
