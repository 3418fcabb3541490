# The long fault soak (issue 7): tests/chaos.rs at sizes too large for `make test`,
# with a release build of the operator. Not part of `make test`.
# Included from the main Makefile.

CHAOS_BINDINGS ?= 1000
CHAOS_KILLS ?= 10
CHAOS_KILL_BINDINGS ?= 200
CHAOS_MANY ?= 5000

.PHONY: chaos

## chaos: tests/chaos.rs with 1,000 faulty bindings, 10 SIGKILLs and 5,000 bindings at once
chaos: tools
	CHAOS_BINDINGS=$(CHAOS_BINDINGS) CHAOS_KILLS=$(CHAOS_KILLS) \
	CHAOS_KILL_BINDINGS=$(CHAOS_KILL_BINDINGS) CHAOS_MANY=$(CHAOS_MANY) \
	    $(CARGO) test --release --locked --test chaos -- --test-threads=1 --nocapture
