#!/usr/bin/env bash
# Start the database DATABASE_URL points at (PostgreSQL or MariaDB) if it is not answering, with
# this machine kind's commands; harmless where the service already runs.
set -uo pipefail
case "${DATABASE_URL:-}" in
  postgres*://*) name=PostgreSQL port=5432 ;;
  mysql*://*) name=MariaDB port=3306 ;;
  *) exit 0 ;;
esac
ready() { python3 - "$port" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
ready && exit 0
echo ">> $name is not answering on 127.0.0.1:$port; starting it" >&2
case $name in
  PostgreSQL)
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi ;;
  MariaDB)
    if [ -x /usr/sbin/mariadbd ]; then
      # mariadbd needs its socket directory, which lives on a tmpfs on many machines.
      install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    fi ;;
esac
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "$name did not start on 127.0.0.1:$port" >&2
exit 1
