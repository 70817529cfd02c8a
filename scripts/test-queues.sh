#!/usr/bin/env bash
# The queue leg (`make test-queues`, part of .ci/run): upload → submit → webhook → ready with
# real worker processes on django-tasks-db, django-tasks-rq and django-tasks-celery
# (tests/test_queues.py). Its own virtualenv (.venv-queues: the dev and queues extras, Django 6),
# its own PostgreSQL database (tapestry_queues), Redis DB 13 and RabbitMQ vhost tapestry-queues;
# Redis and RabbitMQ are started if down. Prints the leg's duration.
#   scripts/test-queues.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$EPOCHREALTIME
venv=$(VENV=.venv-queues MIN_PYTHON=3.12 scripts/bootstrap.sh dev,queues | tail -1)
export DATABASE_URL=${QUEUES_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tapestry_queues}
ENSURE_QUEUES=1 scripts/ensure-services.sh
export PATH="$PWD/$venv/bin:$PATH" DJANGO_SETTINGS_MODULE=tests.queue_settings
ready=$EPOCHREALTIME
set +e
"$venv/bin/python" -m pytest -m queues tests/test_queues.py -p no:cacheprovider -s "$@"
status=$?
set -e
[ "$status" = 5 ] && echo "no tests ran" >&2
awk -v a="$started" -v r="$ready" -v b="$EPOCHREALTIME" -v s="$status" 'BEGIN {
  printf "== queue leg took %.1f s: %.1f s setting up (virtualenv, services), %.1f s of tests (exit %s)\n",
    b - a, r - a, b - r, s }'
exit "$status"
