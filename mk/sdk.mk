# Conformance of teo-emulator with the official Tencent Cloud Python SDK
# (tests/sdk). Included from the top-level Makefile.
#
# The venv is created once per requirements.txt hash in the user cache by
# tests/sdk/venv.sh; later runs reuse it without network access.

SDK_REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)

.PHONY: test-sdk
test-sdk:
	cd "$(SDK_REPO)" && cargo build -q --locked -p teo-emulator
	cd "$(SDK_REPO)" && venv="$$(tests/sdk/venv.sh)" && "$$venv/bin/python" -m pytest -q tests/sdk
