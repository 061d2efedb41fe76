#!/usr/bin/env bash
# `make rig`: an all-real gate on one machine. Starts pcscd with vpcd, then `gate-sim rig`
# (the simulated lane on its real transports: chips through vpcd, the OCR reader and the
# fingerprint scanner on ptys, the doors on a Modbus TCP module), then `gated` with
# configs/gate.rig.toml (no simulated device) and its API. The first line on stdout is
# the console URL (sign-in tokens follow on stderr). Stops both on Ctrl-C, or when the
# rig's traffic is done; the rig's JSON report is then in target/rig/report.json.
#
#   RIG_SCENARIO=configs/scenarios/rig-smoke.toml scripts/rig.sh
#   RIG_ARGS=--timing scripts/rig.sh      # extra flags for gate-sim rig (scripts/bench-rig.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${RIG_SCENARIO:-configs/scenarios/rig-mix.toml}
bin=${RIG_BIN:-target/release}
mkdir -p target/rig
rm -f target/rig/journal.sqlite target/rig/journal.sqlite-wal target/rig/journal.sqlite-shm

# pcscd with the vpcd reader (PostgreSQL is not needed here).
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! pgrep -x pcscd >/dev/null; then
  echo "rig: starting pcscd" >&2
  $SUDO pcscd
fi
for _ in $(seq 50); do [ -S /run/pcscd/pcscd.comm ] && break; sleep 0.1; done
[ -S /run/pcscd/pcscd.comm ] || { echo "rig: pcscd did not open /run/pcscd/pcscd.comm" >&2; exit 1; }

# shellcheck disable=SC2086 # RIG_ARGS is a list of flags
"$bin/gate-sim" rig "$scenario" --json --display http://127.0.0.1:8080 ${RIG_ARGS:-} >target/rig/report.json 2>target/rig/rig.log &
rig=$!
gated_pid=""
stop() {
  [ -n "$gated_pid" ] && kill -TERM "$gated_pid" 2>/dev/null || true
  kill -TERM "$rig" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM
for _ in $(seq 100); do
  [ -e target/rig/mrz ] && [ -e target/rig/scanner ] && break
  kill -0 "$rig" 2>/dev/null || { echo "rig: gate-sim rig stopped:" >&2; cat target/rig/rig.log >&2; exit 1; }
  sleep 0.1
done
[ -e target/rig/mrz ] || { echo "rig: gate-sim rig made no ptys (target/rig/mrz)" >&2; exit 1; }

# gated prints the console URL and one-time tokens on stderr: the URL goes first on stdout.
"$bin/gated" --config configs/gate.rig.toml 2> >(
  url_shown=""
  while IFS= read -r line; do
    if [ -z "$url_shown" ] && [[ "$line" == gated:\ http://* ]]; then
      echo "${line#gated: }"
      url_shown=1
    fi
    echo "$line" >&2
  done
) &
gated_pid=$!
wait "$rig" || true
echo "rig: traffic done; report in target/rig/report.json" >&2
