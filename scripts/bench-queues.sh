#!/usr/bin/env bash
# The queue benchmark (part of `make bench`): submit throughput with 1, 2 and 4 worker processes
# on django-tasks-db, RQ and Celery (bench/queues.py). Like the queue leg it uses .venv-queues,
# Redis DB 13 and the RabbitMQ vhost tapestry-queues (started/created if missing); its database
# is tapestry_bench_queues (created if missing).
#   scripts/bench-queues.sh [--uploads 200] [--workers 1 2 4] [--backends db rq celery] [--latency 0.1] [--faults 0]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(VENV=.venv-queues MIN_PYTHON=3.12 scripts/bootstrap.sh dev,queues | tail -1)
export BENCH_QUEUES_DATABASE_URL=${BENCH_QUEUES_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tapestry_bench_queues}
DATABASE_URL=$BENCH_QUEUES_DATABASE_URL ENSURE_QUEUES=1 scripts/ensure-services.sh
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m bench.queues "$@"
