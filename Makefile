# echannel — developer entry points. `make demo` and `make test` work on a fresh clone
# (Debian/Ubuntu): they install whatever Debian packages are missing, then build and run.

SHELL := /bin/bash
CARGO ?= cargo
# Data shared by evals (fingerprint sets, ...); never copied into the repo.
ECHANNEL_SHARED ?= $(abspath $(CURDIR)/../shared)
export ECHANNEL_SHARED

# ---- Debian packages ---------------------------------------------------------------
# Needed now (build).
DEB_PACKAGES_BUILD := pkg-config build-essential
# Needed by later issues; move them into DEB_PACKAGES as each lands:
#   libpcsclite-dev (build, PC/SC), pcscd vsmartcard-vpcd (live card tests),
#   chromium chromium-driver (console browser tests), postgresql (upstream ingest tests).
DEB_PACKAGES_LATER := libpcsclite-dev pcscd vsmartcard-vpcd chromium chromium-driver postgresql
DEB_PACKAGES := $(DEB_PACKAGES_BUILD)

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build demo test services eval lint bench clean

## deps: install the missing Debian packages (idempotent; apt-get update only if needed)
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "deps: all Debian packages present ($(DEB_PACKAGES))"; \
	else \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

## build: release build of every binary (gated, gatectl, gate-sim)
build: deps
	$(CARGO) build --release --workspace

## demo: a simulated control point in real time (first line: the console URL)
demo: build
	./target/release/gate-sim demo

## services: start the services the tests need (later issues: pcscd, postgresql)
services: deps
	@true

## test: everything `cargo test` covers, with the services it needs
test: deps services
	$(CARGO) test --workspace

## eval: evaluations on the shared data sets (the #[ignore]d "eval:" tests)
eval:
	@if [ ! -d "$(ECHANNEL_SHARED)" ]; then \
	  echo "eval: skipped: $(ECHANNEL_SHARED) is absent (set ECHANNEL_SHARED to the shared data)"; \
	else \
	  $(CARGO) test --workspace --release -- --ignored; \
	fi

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: benchmarks (criterion, and the decision-latency percentiles)
bench: deps
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
