#!/usr/bin/env bash
# Start the local services the test suite uses, idempotently, on a Debian machine:
#   - pcscd (with vsmartcard's vpcd driver listening on 127.0.0.1:35963) for the live card tests;
#   - PostgreSQL with a role and database `echannel` for the upstream ingest store tests.
# Prints `export ECHANNEL_PG_URL=...` on the last line. Needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

# --- pcscd -------------------------------------------------------------------------------
if ! pgrep -x pcscd >/dev/null; then
  echo "services: starting pcscd" >&2
  $SUDO pcscd
fi
for _ in $(seq 50); do
  [ -S /run/pcscd/pcscd.comm ] && break
  sleep 0.1
done
[ -S /run/pcscd/pcscd.comm ] || { echo "services: pcscd did not open /run/pcscd/pcscd.comm" >&2; exit 1; }

# --- PostgreSQL ----------------------------------------------------------------------------
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR==1 {print $1" "$2" "$4}')
if [ -z "$cluster" ]; then
  echo "services: no PostgreSQL cluster (is the postgresql package installed?)" >&2; exit 1
fi
set -- $cluster
if [ "$3" != "online" ]; then
  echo "services: starting PostgreSQL cluster $1/$2" >&2
  $SUDO pg_ctlcluster "$1" "$2" start
fi
psql_su() { $SUDO runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }
for _ in $(seq 50); do psql_su "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$(psql_su "select 1 from pg_roles where rolname='echannel'")" != "1" ]; then
  psql_su "create role echannel login password 'echannel'"
fi
if [ "$(psql_su "select 1 from pg_database where datname='echannel'")" != "1" ]; then
  psql_su "create database echannel owner echannel"
fi
echo "services: pcscd and PostgreSQL are up" >&2
