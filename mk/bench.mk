# The scale benchmark (issue 6): cold start, renewal wave and steady state on the real
# control plane and the emulator with EdgeOne's limits, coalesced and per-host. Not
# part of `make test`: it takes about 11 minutes and measures rather than asserts.
# Included from the main Makefile.

BENCH_OUT ?= target/bench/results.json
# Extra flags for edgeone-bench, e.g. BENCH_ARGS="--bindings 200 --skip-baseline".
BENCH_ARGS ?=

.PHONY: bench

## bench: run the benchmark; markdown table on stdout, JSON in $(BENCH_OUT)
bench: tools
	$(CARGO) build --release --locked -p edgeone-cert-operator -p edgeone-bench
	target/release/edgeone-bench --operator target/release/edgeone-cert-operator \
	    --output $(BENCH_OUT) $(BENCH_ARGS)
