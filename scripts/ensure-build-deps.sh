#!/usr/bin/env bash
# mysqlclient (the dev extra's MariaDB/MySQL driver) ships no Linux wheel: pip compiles it
# against the client library's headers (found through pkg-config) and Python's own headers.
# Install what is missing when we are root (Debian's packages); otherwise say what is needed.
#   scripts/ensure-build-deps.sh PYTHON
set -uo pipefail
python=${1:-python3}
have() {
  command -v pkg-config >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 \
    && { pkg-config --exists mysqlclient || pkg-config --exists mariadb; } \
    && "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing build dependencies for mysqlclient (MariaDB client headers, pkg-config)" >&2
  packages=(default-libmysqlclient-dev pkg-config build-essential python3-dev)
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq "${packages[@]}" || { apt-get update -qq \
      && apt-get install -y -qq "${packages[@]}"; }; } >/dev/null 2>&1
fi
have && exit 0
echo "mysqlclient (dev extra) cannot be built for $python: it needs a C compiler, pkg-config," \
     "the MySQL/MariaDB client headers and Python's headers. On Debian/Ubuntu: apt-get install" \
     "default-libmysqlclient-dev pkg-config build-essential python3-dev." >&2
exit 1
