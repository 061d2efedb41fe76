#!/usr/bin/env bash
# Installs gated on this machine: binaries, a config, the state directory, the unit.
# Usage: sudo deploy/install.sh [--config FILE]   (run from the repository root after
# `make build`). Idempotent: an existing /etc/echannel/gate.toml is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

config="configs/gate.example.toml"
if [[ "${1:-}" == "--config" && -n "${2:-}" ]]; then config="$2"; fi
if [[ $(id -u) -ne 0 ]]; then echo "install.sh: run as root (sudo)" >&2; exit 1; fi
for b in gated gatectl; do
  if [[ ! -x "target/release/$b" ]]; then
    echo "install.sh: target/release/$b is missing; run 'make build' first" >&2; exit 1
  fi
done

getent group echannel >/dev/null || groupadd --system echannel
getent passwd echannel >/dev/null || \
  useradd --system --gid echannel --home-dir /var/lib/echannel --shell /usr/sbin/nologin echannel
for g in dialout gpio; do getent group "$g" >/dev/null && usermod -a -G "$g" echannel || true; done

install -m 0755 target/release/gated target/release/gatectl /usr/local/bin/
install -d -m 0750 -o echannel -g echannel /var/lib/echannel
install -d -m 0755 /etc/echannel
if [[ ! -e /etc/echannel/gate.toml ]]; then
  sed 's#^path = .*journal.*#path = "/var/lib/echannel/journal.sqlite"#' "$config" \
    > /etc/echannel/gate.toml
  chmod 0640 /etc/echannel/gate.toml
  chgrp echannel /etc/echannel/gate.toml
  echo "install.sh: wrote /etc/echannel/gate.toml from $config (edit [gate] id and [devices])"
fi
/usr/local/bin/gated --check --config /etc/echannel/gate.toml

install -m 0644 deploy/gated.service /etc/systemd/system/gated.service
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable gated.service
  echo "install.sh: installed; start with 'systemctl start gated', logs: 'journalctl -u gated'"
else
  echo "install.sh: installed (no running systemd here; unit is in /etc/systemd/system)"
fi
