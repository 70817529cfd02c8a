#!/usr/bin/env bash
# Start the database DATABASE_URL points at (PostgreSQL or MariaDB) if it is not answering, with
# this machine kind's commands; harmless where the service already runs.
set -uo pipefail

# --- the queue leg (ENSURE_QUEUES=1, scripts/test-queues.sh): Redis and RabbitMQ ---------------
port_open() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), timeout=1).close()" 2>/dev/null; }
wait_port() { for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done; return 1; }
ensure_queues() {
  if ! port_open 6379; then
    echo ">> Redis is not answering; starting it" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379 30 || { echo "Redis did not start on 127.0.0.1:6379" >&2; return 1; }
  fi
  if ! port_open 5672; then
    echo ">> RabbitMQ is not answering; starting it" >&2
    rabbitmq-server -detached
    wait_port 5672 90 || { echo "RabbitMQ did not start on 127.0.0.1:5672" >&2; return 1; }
    rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  fi
  # The leg's own vhost, so its queues never meet another run's (each rabbitmqctl costs seconds).
  if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx tapestry-queues; then
    rabbitmqctl -q add_vhost tapestry-queues >/dev/null &&
      rabbitmqctl -q set_permissions -p tapestry-queues guest ".*" ".*" ".*" >/dev/null
  fi
}
if [ "${ENSURE_QUEUES:-}" = 1 ]; then
  ensure_queues || exit 1
fi
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
