#!/usr/bin/env bash
# `make bench-rig`: the all-real lane's benchmark in one command. Builds gated and gate-sim
# in release, starts pcscd with vpcd (scripts/dev-services.sh), then runs `gate-sim rig
# --timing` on configs/scenarios/rig-bench.toml against `gated --config
# configs/gate.rig.toml` (scripts/rig.sh) and prints the figures: passage time (document
# presented → exit closed behind the traveller) median and p90 against Hong Kong's 8 s, and
# the controller's share of each step (last input → the command answering it, transports
# included) against 50 ms at p99. The full report is in target/rig/report.json, the logs in
# target/rig/bench.log (docs/rig.md "Benchmark").
#
#   BENCH_SCENARIO=configs/scenarios/rig-smoke.toml scripts/bench-rig.sh   # a quick look
#   BENCH_BUILD=0 RIG_BIN=dir scripts/bench-rig.sh     # binaries built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${BENCH_SCENARIO:-configs/scenarios/rig-bench.toml}
command -v jq >/dev/null || { echo "bench-rig: needs jq (apt-get install jq)" >&2; exit 1; }

bin=${RIG_BIN:-target/release}
if [ "${BENCH_BUILD:-1}" != 0 ]; then
  echo "bench-rig: building gated and gate-sim (release)" >&2
  ${CARGO:-cargo} build --release -q -p gate-controller --bin gated -p sim --bin gate-sim
fi
scripts/dev-services.sh >/dev/null
mkdir -p target/rig
echo "bench-rig: running $scenario (logs in target/rig/bench.log)" >&2
RIG_SCENARIO=$scenario RIG_ARGS=--timing RIG_BIN=$bin scripts/rig.sh \
  >target/rig/bench.log 2>&1 || true
report=target/rig/report.json
jq -e '.timing' "$report" >/dev/null 2>&1 || {
  echo "bench-rig: no timing in $report; see target/rig/rig.log and target/rig/bench.log" >&2
  exit 1
}
jq -r '
  def ms: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
  def row($n; $s): "  \($n | . + (" " * (26 - length)))\($s.count | tostring | (" " * (5 - length)) + .)"
    + ([$s.median, $s.p90, $s.p99, $s.max] | map(ms | (" " * (9 - length)) + .) | join(""));
  "scenario \(.scenario) seed \(.seed): \(.transits) transits, cleared \(.outcomes.cleared), referred \(.outcomes.referred), held \(.outcomes.held), aborted \(.outcomes.aborted) in \(.virtual_duration_s | round) s",
  "passage (document presented -> exit closed), cleared travellers: median \(.timing.passage_ms.median | ms) ms, p90 \(.timing.passage_ms.p90 | ms) ms (n = \(.timing.passage_ms.count); Hong Kong e-Channel: 8000 ms)",
  "controller share, ms (last input -> command, transports included; target p99 <= 50):",
  "  pair                      count   median      p90      p99      max",
  (. as $r | ["document_to_first_apdu", "chip_to_entry_open", "entered_to_entry_close",
    "entry_closed_to_capture", "template_to_exit_open", "out_to_exit_close"][]
    | row(.; $r.timing.pairs[.])),
  row("all pairs"; .timing.controller_share_ms),
  row("(apdu turnaround)"; .timing.apdu_turnaround_ms),
  (if (.timing.incomplete | length) > 0 then "incomplete: \(.timing.incomplete | join(", "))" else empty end),
  "expectations: \(.expectations.passed) passed, \(.expectations.failed) failed; invariant violations: \(.invariant_violations)"
' "$report"
