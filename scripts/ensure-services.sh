#!/usr/bin/env bash
# Start PostgreSQL if DATABASE_URL points at it and it is not answering (this machine kind's
# commands; harmless where the service already runs).
set -uo pipefail
case "${DATABASE_URL:-}" in
  postgres*://*) ;;
  *) exit 0 ;;
esac
ready() { python3 - <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
ready && exit 0
echo ">> PostgreSQL is not answering; starting it" >&2
if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
exit 1
