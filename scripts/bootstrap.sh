#!/usr/bin/env bash
# Create (or reuse) a virtualenv with tapestry-media and its extras installed.
#   scripts/bootstrap.sh EXTRAS            -> prints the venv's directory on the last line
# DJANGO_SERIES=5.2 pins Django 5.2 LTS (+ the django-tasks backport) in .venv-dj52.
# On Python 3.11 Django 5.2 is chosen automatically (Django 6 needs 3.12+).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-dev}
series=${DJANGO_SERIES:-}

if [ "$series" = "5.2" ]; then
  read -r python version < <(PYTHON=${PYTHON:-} scripts/find-python.sh)
else
  read -r python version < <(scripts/find-python.sh)
  [ "$version" = "3.11" ] && series=5.2
fi

if [ "$series" = "5.2" ]; then
  venv=${VENV:-.venv-dj52}
  pins=("Django>=5.2,<5.3" "django-tasks>=0.8")
else
  venv=${VENV:-.venv}
  pins=("Django>=6.0")
fi

stamp="$venv/.tapestry-stamp"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) $extras ${pins[*]} $python"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo ">> creating $venv with $python (Python $version, Django ${series:-latest})" >&2
  rm -rf "$venv"
  case ",$extras," in *,dev,*) scripts/ensure-build-deps.sh "$python" ;; esac
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]" "${pins[@]}" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
