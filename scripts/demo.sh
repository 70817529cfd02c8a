#!/usr/bin/env bash
# The main job: the example site on the embedded local engine, set up from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/bootstrap.sh dev | tail -1)
exec "$venv/bin/python" scripts/demo.py "$@"
