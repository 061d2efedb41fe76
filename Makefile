# echannel — developer entry points. `make demo` and `make test` work on a fresh clone
# (Debian/Ubuntu): they install whatever Debian packages are missing, then build and run.

SHELL := /bin/bash
CARGO ?= cargo
# Data shared by evals (fingerprint sets, ...); never copied into the repo.
ECHANNEL_SHARED ?= $(abspath $(CURDIR)/../shared)
export ECHANNEL_SHARED

# ---- Debian packages ---------------------------------------------------------------
# Build: compiler, pkg-config and the PC/SC headers (crate feature `pcsc`).
DEB_PACKAGES_BUILD := pkg-config build-essential libpcsclite-dev
# Tests: pcscd with the vpcd virtual reader (live card tests), headless Chromium with its
# WebDriver and CJK fonts (console tests), PostgreSQL (upstream ingest store), jq
# (make bench-rig).
DEB_PACKAGES_TEST := pcscd vsmartcard-vpcd chromium chromium-driver fonts-noto-cjk postgresql jq
DEB_PACKAGES := $(DEB_PACKAGES_BUILD) $(DEB_PACKAGES_TEST)
# The database the upstream tests use (created by `make services`).
ECHANNEL_PG_URL ?= postgresql://echannel:echannel@127.0.0.1/echannel

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build demo rig test services eval lint import-cycles bench bench-rig clean

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

## rig: an all-real gate on this machine: gate-sim rig serves a simulated lane on real
## transports (vpcd, OCR and scanner ptys, Modbus TCP), gated drives it with
## configs/gate.rig.toml (no simulated device); first line: the console URL
rig: build
	scripts/rig.sh

## services: start the services the tests need (pcscd with vpcd, PostgreSQL)
services: deps
	@scripts/dev-services.sh

## test: the whole suite, with the services it needs: every crate's tests, then the live
## card tests through pcscd + vpcd, and gated with the PC/SC reader (one at a time; the
## pcscd-restart tests run last, alone)
test: deps services
	ECHANNEL_PG_URL=$(ECHANNEL_PG_URL) $(CARGO) test --workspace
	$(CARGO) test -p device-drivers --features pcsc,gpio --test pcsc_vpcd \
	  -- --ignored --test-threads 1 --skip survives_pcscd_restart
	$(CARGO) test -p gate-controller --features pcsc --test gated_pcsc \
	  -- --ignored --test-threads 1 --skip gate_recovers_after_pcscd_restart
	$(CARGO) build -p gate-controller --bin gatectl
	$(CARGO) test -p sim --test card_vpcd -- --ignored --test-threads 1
	$(CARGO) test -p sim --test rig -- --ignored --test-threads 1
	$(CARGO) test -p echannel-tests --test rig_lane -- --ignored --test-threads 1 --nocapture
	ECHANNEL_PCSCD_RESTART=1 $(CARGO) test -p device-drivers --features pcsc,gpio --test pcsc_vpcd \
	  -- --ignored --exact survives_pcscd_restart
	ECHANNEL_PCSCD_RESTART=1 $(CARGO) test -p gate-controller --features pcsc --test gated_pcsc \
	  -- --ignored --exact gate_recovers_after_pcscd_restart
	$(CARGO) test -p device-drivers --features pcsc,gpio --lib io::gpio

## eval: evaluations on the shared data sets (../shared, or ECHANNEL_SHARED): the
## fingerprint golden vectors and FVC2002 accuracy, the resident-ID profile on real templates
eval:
	@if [ ! -d "$(ECHANNEL_SHARED)" ]; then \
	  echo "eval: skipped: $(ECHANNEL_SHARED) is absent (set ECHANNEL_SHARED to the shared data)"; \
	else \
	  set -e; \
	  $(CARGO) test --release -p device-drivers --test fingerprint_golden -- --ignored; \
	  $(CARGO) test --release -p device-drivers --test resident_eval -- --ignored; \
	  $(CARGO) run --release -q -p gate-controller --bin gatectl -- \
	    fingerprint eval "$(ECHANNEL_SHARED)/data/fingerprints/fvc2002" --json; \
	fi

## lint: formatting and clippy, warnings are errors
lint: deps import-cycles
	$(CARGO) fmt --all -- --check
	# the workspace builds device-drivers with pcsc and gpio (gate-controller's defaults);
	# the second run lints the drivers without either feature
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p device-drivers --all-targets -- -D warnings
	# the fuzz targets (not a workspace member) must keep compiling
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins

## bench-rig: the all-real lane's benchmark: gated (configs/gate.rig.toml) against
## gate-sim rig --timing on configs/scenarios/rig-bench.toml, in release; prints the
## passage time (median, p90) and the controller's share of each step (p99)
bench-rig: deps
	scripts/bench-rig.sh

## bench: benchmarks (criterion, and the decision-latency percentiles)
bench: deps
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean

## import-cycles (part of lint): no import cycle between gate-controller's modules, and
## the pure core (machine, decision, record, ...) imports nothing from runtime, api,
## upstream or config. The graph is read from the sources (scripts/import-cycles.py says
## how), so nothing is to be installed; `scripts/import-cycles.py FILE.dot` reads the DOT
## of cargo-modules 0.27 instead, as a cross-check.
import-cycles:
	python3 scripts/import-cycles.py --src gate-controller/src
