#!/usr/bin/env bash
# The test command: sets everything up on a fresh machine, then runs pytest.
#   scripts/test.sh [pytest args]
# DATABASE_URL=postgres://postgres@127.0.0.1:5432/test runs on PostgreSQL (started if down);
# DJANGO_SERIES=5.2 runs on Django 5.2 LTS.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/bootstrap.sh dev | tail -1)
scripts/ensure-services.sh
scripts/ensure-browser.sh
export PATH="$PWD/$venv/bin:$PATH"
set +e
"$venv/bin/python" -m pytest "$@"
status=$?
set -e
# pytest's 5 means "no tests ran": a command that tests nothing has failed.
[ "$status" = 5 ] && echo "no tests ran" >&2
exit "$status"
