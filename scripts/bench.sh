#!/usr/bin/env bash
# The benchmark command (`make bench`): sets everything up on a fresh machine like
# scripts/test.sh does, then runs every benchmark and large-N scenario and prints one table.
#   scripts/bench.sh [PART ...] [--quick] [--only peers,inprocess,queries,submit,local,storm,scenarios,fuzz]
#   scripts/bench.sh peers          # the webhook peers alone (bench/peers.py, ~6 minutes)
# Needs PostgreSQL (started if down) and wrk (the Debian package, installed if missing); uses
# its own database, tapestry_bench (created if missing; BENCH_DATABASE_URL to change it).
# Takes about 15 minutes on a 2-core machine; --quick about 2.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo ">> installing wrk (HTTP load generator of the webhook peers benchmark)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  else
    sudo apt-get install -y -q wrk >/dev/null
  fi
fi
venv=$(scripts/bootstrap.sh dev | tail -1)
export BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tapestry_bench}
DATABASE_URL=$BENCH_DATABASE_URL scripts/ensure-services.sh
export PATH="$PWD/$venv/bin:$PATH"
# Leading words are part names: `scripts/bench.sh peers queries` = `--only peers,queries`.
parts=()
while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do parts+=("$1"); shift; done
if [ ${#parts[@]} -gt 0 ]; then
  set -- --only "$(IFS=,; echo "${parts[*]}")" "$@"
fi
exec "$venv/bin/python" -m bench.run "$@"
