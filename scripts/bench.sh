#!/usr/bin/env bash
# The benchmark command (`make bench`): sets everything up on a fresh machine like
# scripts/test.sh does, then runs every benchmark and large-N scenario and prints one table.
#   scripts/bench.sh [--quick] [--only webhooks,inprocess,queries,submit,local,storm,scenarios,fuzz]
# Needs PostgreSQL (started if down); uses its own database, tapestry_bench (created if
# missing; BENCH_DATABASE_URL to change it). Takes about 5 minutes on a 2-core machine; --quick about 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/bootstrap.sh dev | tail -1)
export BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tapestry_bench}
DATABASE_URL=$BENCH_DATABASE_URL scripts/ensure-services.sh
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m bench.run "$@"
