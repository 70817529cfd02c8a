#!/usr/bin/env bash
# Print "PATH MAJOR.MINOR" of the best Python for this project, found by *running* candidates:
# >= 3.12 preferred (Django 6), 3.11 accepted (Django 5.2 LTS). With MIN_PYTHON=3.12 set,
# 3.11 is not accepted; with MAX_PYTHON=3.11 nothing newer is taken (the Django 5.2 CI leg
# uses it to prove the fallback). Exits 1 with a clear message if nothing fits.
set -u
min=${MIN_PYTHON:-3.11}
max=${MAX_PYTHON:-3.99}
min_minor=${min#3.}
max_minor=${max#3.}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.13 python3.12)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for dir in $(ls -d "$root"/versions/3.1[0-9]* 2>/dev/null | sort -V -r); do
    candidates+=("$dir/bin/python3")
  done
fi
candidates+=(/usr/local/bin/python3 /usr/bin/python3 python3 python3.11 python)

best=""
best_minor=0
for candidate in "${candidates[@]}"; do
  version=$("$candidate" -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
  minor=${version#3.}
  [ "${version%%.*}" = 3 ] || continue
  if [ "$minor" -ge "$min_minor" ] && [ "$minor" -le "$max_minor" ] && [ "$minor" -gt "$best_minor" ]; then
    best=$(command -v "$candidate" 2>/dev/null || echo "$candidate")
    best_minor=$minor
  fi
done

if [ -z "$best" ]; then
  echo "tapestry-media needs Python >= 3.${min_minor} with venv and ensurepip (3.12+ for Django 6," \
       "3.11 for Django 5.2). None of these worked: ${candidates[*]}." \
       "Install one, or point PYTHON=/path/to/python3.12 at it." >&2
  exit 1
fi
echo "$best 3.$best_minor"
