# Developer and CI entry points. `make check` is what CI runs (through .ci/run).
#
# Cargo's target directory follows CARGO_TARGET_DIR when set. In CI (CI=true) every cargo call
# adds --locked, so a Cargo.lock that does not match Cargo.toml fails instead of being rewritten.

CARGO ?= cargo
LOCKED := $(if $(filter true 1,$(CI)),--locked,)
# Extra arguments for the test binaries, e.g. `make test TEST_ARGS=--test-threads=1`.
TEST_ARGS ?=

.PHONY: check setup fmt fmt-check lint test test-cluster schema schema-check man man-check package bench deny ci-versions help venv-lock

## check: everything CI runs: setup, formatting, lints, the man page, the crate package, tests
# Every tool the tests start is required here: setup fails, and so does a test, without one.
check: export STEADFAST_REQUIRE_TOOLS ?= 1
check: setup fmt-check lint man-check package test

## setup: install the tools the tests start (Prometheus, Pushgateway, Chromium, .venv)
setup:
	scripts/setup

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## fmt-check: fail when the code is not formatted
fmt-check:
	$(CARGO) fmt --all -- --check

## lint: clippy over every target, warnings are errors
lint:
	$(CARGO) clippy $(LOCKED) --all-targets -- -D warnings

## test: every unit, integration and doc test (tests needing a cluster are ignored)
# A test whose tool (moto, Prometheus, Chromium...) is missing fails; STEADFAST_REQUIRE_TOOLS=0
# makes it skip instead.
test: export STEADFAST_REQUIRE_TOOLS ?= 1
test:
	$(CARGO) test $(LOCKED) --no-fail-fast -- $(TEST_ARGS)

## test-cluster: the ignored tests, against the cluster in KUBECONFIG
test-cluster:
	$(CARGO) test $(LOCKED) --no-fail-fast -- --ignored $(TEST_ARGS)

## schema: regenerate experiments/schema.json from the spec types
schema:
	$(CARGO) run $(LOCKED) -q -- schema > experiments/schema.json.tmp
	mv experiments/schema.json.tmp experiments/schema.json

## schema-check: fail when experiments/schema.json differs from what the code generates
schema-check:
	@tmp="$$(mktemp)"; trap 'rm -f "$$tmp"' EXIT; \
	$(CARGO) run $(LOCKED) -q -- schema > "$$tmp" || exit 2; \
	if ! diff -u experiments/schema.json "$$tmp"; then \
	  echo "experiments/schema.json is stale; hint: run 'make schema' and commit the result" >&2; \
	  exit 1; \
	fi

## man: regenerate docs/steadfast.1 from the command-line definitions
man:
	$(CARGO) run $(LOCKED) -q -- man > docs/steadfast.1.tmp
	mv docs/steadfast.1.tmp docs/steadfast.1

## man-check: fail when docs/steadfast.1 differs from what the code generates
man-check:
	@tmp="$$(mktemp)"; trap 'rm -f "$$tmp"' EXIT; \
	$(CARGO) run $(LOCKED) -q -- man > "$$tmp" || exit 2; \
	if ! diff -u docs/steadfast.1 "$$tmp"; then \
	  echo "docs/steadfast.1 is stale; hint: run 'make man' and commit the result" >&2; \
	  exit 1; \
	fi

## package: build the crate as `cargo install steadfast` would get it (nothing is published)
# Cargo builds the packaged sources in the same target directory, so compiled dependencies are
# reused. Uncommitted changes to packaged files fail it; commit them first.
package:
	$(CARGO) package --locked

## bench: the benchmarks (release profile; not part of check)
bench:
	$(CARGO) bench $(LOCKED)

## deny: licenses, advisories and duplicate versions (needs cargo-deny installed)
deny:
	@command -v cargo-deny >/dev/null || { echo "cargo-deny not installed; hint: cargo install --locked cargo-deny" >&2; exit 2; }
	$(CARGO) deny --all-features check

## ci-versions: print the versions of the tools a CI log should show
ci-versions:
	@$(CARGO) --version; rustc --version; $(CARGO) fmt --version; $(CARGO) clippy --version
	@uname -srm; echo "cores: $$(nproc)"

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## venv-lock: re-pin scripts/constraints-test.txt from a fresh resolve of requirements-test.txt
venv-lock:
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip --disable-pip-version-check -q install -r scripts/requirements-test.txt
	{ sed -n '1,2p' scripts/constraints-test.txt; .venv-lock/bin/python -m pip freeze --disable-pip-version-check; } > scripts/constraints-test.txt.new
	mv scripts/constraints-test.txt.new scripts/constraints-test.txt && rm -rf .venv-lock
	scripts/setup
