"""Where a first delivery's CPU goes: the app's endpoint and the peer views, in-process.

    python -m bench.profile_webhook [--requests 300] [--rounds 3] [--top 25] [--save DIR]

Each endpoint gets ``--requests`` first deliveries through Django's test client (full middleware
stack) on the bench database, ``--rounds`` times (the lowest figure counts: the others were
disturbed by the rest of the machine): unprofiled for the CPU per delivery of this process
(``time.process_time``) and of its PostgreSQL backend (``/proc/<pid>/stat``), the statements
(``CaptureQueriesContext``) and WAL bytes (``pg_current_wal_lsn()``) per delivery and the HOT share
of the updates (``pg_stat_user_tables``); then once under cProfile with the same CPU clock, whose
cumulative times per step of the app's path are printed per delivery and as a share of the whole
request. Deliveries run one at a time, so the HOT share is an upper bound of the concurrent one.

The bodies are built and signed before any measurement, so every figure covers the requests
alone. Python function calls per delivery (cProfile's count: the same in every run, whatever
the load) are printed for the app and for the peers (``bench/views.py``: the bare view, the
DRF view and the bare view keeping an upload status), the floor the app is compared with;
``--top N`` lists the app's N functions with the most own time per delivery, ``--save DIR``
keeps each side's profile (``DIR/<side>.pstats``, for ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path
from typing import Any

from . import harness

#: (label, file suffix, function) of the steps reported, outermost first.
STEPS = (
    ("whole request (test client -> response)", "django/test/client.py", "__call__"),
    ("  the webhook view (after middleware)", "tapestry_media/api/webhooks.py", "post"),
    ("    webhooks.deliver", "tapestry_media/webhooks.py", "deliver"),
    ("      reconcile.apply (the transaction)", "tapestry_media/reconcile.py", "apply"),
    ("        find_task: SELECT ... FOR UPDATE", "tapestry_media/reconcile.py", "find_task"),
    ("        event insert + task save (Model.save)", "django/db/models/base.py", "save"),
    ("        aggregate.refresh (submission)", "tapestry_media/aggregate.py", "refresh"),
    ("every SQL statement: psycopg execute", "psycopg/cursor.py", "execute"),
    ("every SQL statement: Django compiles it", "django/db/models/sql/compiler.py", "as_sql"),
    ("model instances from rows", "django/db/models/base.py", "from_db"),
)


#: A first ``succeeded`` delivery, built and signed ahead of the measurement.
Delivery = tuple[bytes, dict[str, str]]


def prepared(rows: list[Any]) -> list[Delivery]:
    bodies = [harness.task_body(row, "succeeded") for row in rows]
    return [(body, harness.sign(body)) for body in bodies]


def deliver(client: Any, path: str, deliveries: list[Delivery]) -> None:
    for body, headers in deliveries:
        response = client.post(path, body, content_type="application/json", headers=headers)
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.content[:200]!r}")


#: The tables each endpoint's deliveries update (for the HOT share).
UPDATED = {
    harness.WEBHOOK_PATH: ("tapestry_media_task", "tapestry_media_submission"),
    harness.BARE_PATH: ("bench_minimal_peertask",),
    harness.DRF_PATH: ("bench_minimal_peertask",),
    harness.UPLOAD_PATH: ("bench_minimal_peertask", "bench_minimal_peerupload"),
}


def _scalar(sql: str) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _counters(tables: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """(HOT updates, updates) of each table so far, and ("buffers", (shared buffers read or
    hit in this database, 0)), this backend's own counts flushed first."""
    from django.db import connection

    _scalar("SELECT pg_stat_force_next_flush()")
    _scalar("SELECT 1")  # a transaction end: the flush happens
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [list(tables)],
        )
        found = {name: (hot, upd) for name, hot, upd in cursor.fetchall()}
        cursor.execute(
            "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"
        )
        found["buffers"] = (cursor.fetchone()[0], 0)
        return found


def measure(client: Any, path: str, rows: list[Delivery]) -> dict[str, float]:
    """Per delivery of ``rows``: CPU ms of this process and of its PostgreSQL backend, WAL
    bytes, shared buffers touched (the whole database's: keep it otherwise idle), and the HOT
    updates of each updated table over the run."""
    backend = _scalar("SELECT pg_backend_pid()")
    before_hot = _counters(UPDATED[path])
    wal = _scalar("SELECT pg_current_wal_lsn()::text")
    db = harness.cpu_seconds([backend])[backend]
    started = time.process_time()
    deliver(client, path, rows)
    cpu = time.process_time() - started
    db = harness.cpu_seconds([backend])[backend] - db
    wal_bytes = _scalar(f"SELECT pg_current_wal_lsn() - '{wal}'::pg_lsn")
    after_hot = _counters(UPDATED[path])
    n = len(rows)
    figures = {"cpu_ms": cpu / n * 1000, "db_cpu_ms": db / n * 1000, "wal_bytes": wal_bytes / n}
    figures["buffers"] = (after_hot.pop("buffers")[0] - before_hot["buffers"][0]) / n
    for table, (hot, updates) in after_hot.items():
        hot -= before_hot[table][0]
        updates -= before_hot[table][1]
        figures[f"hot {table}"] = hot / updates if updates else float("nan")
    return figures


def statements(client: Any, path: str, rows: list[Delivery]) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        deliver(client, path, rows)
    return len(queries) / len(rows)


def seed(path: str, count: int, prefix: str) -> list[Delivery]:
    if path == harness.WEBHOOK_PATH:
        return prepared(harness.seed_tasks(count, prefix=prefix, steps=1))
    uploads = path == harness.UPLOAD_PATH
    return prepared(harness.seed_peer_tasks(count, prefix=prefix, uploads=uploads))


def profiled(client: Any, path: str, deliveries: list[Delivery]) -> pstats.Stats:
    profile = cProfile.Profile(time.process_time)
    profile.runcall(deliver, client, path, deliveries)
    return pstats.Stats(profile)


def report_steps(stats: pstats.Stats, n: int) -> None:
    """The cumulative CPU of each step of the app's path, per delivery and as a share."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = None
    for label, suffix, function in STEPS:
        total = sum(
            value[3]
            for (filename, _, func), value in table.items()
            if filename.endswith(suffix) and func == function
        )
        whole = whole or total
        print(f"  {label:<48} {total / n * 1000:7.2f} ms  {total / whole:6.1%}")


def report_top(stats: pstats.Stats, n: int, top: int) -> None:
    """The ``top`` functions with the most own CPU time, per delivery."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    print(f"  the {top} functions with the most own time (per delivery: calls, own ms, cum ms):")
    ranked = sorted(table.items(), key=lambda item: -item[1][2])[:top]
    for (filename, line, func), (_, calls, own, cumulative, _) in ranked:
        where = filename.rsplit("site-packages/", 1)[-1].removeprefix(f"{harness.ROOT}/")
        print(
            f"    {calls / n:7.1f} {own / n * 1000:7.3f} {cumulative / n * 1000:7.3f}"
            f"  {where}:{line}({func})"
        )


def calls_per_delivery(stats: pstats.Stats, n: int) -> float:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return sum(value[1] for value in table.values()) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--preload", type=int, default=10_000, help="pending tasks each side's table holds too"
    )
    parser.add_argument("--top", type=int, default=0, help="list the app's N costliest functions")
    parser.add_argument("--save", type=Path, help="write each side's profile to DIR/<side>.pstats")
    args = parser.parse_args()
    harness.prepare()
    from django.test import Client

    harness.reset_tables()
    for path in (harness.WEBHOOK_PATH, harness.BARE_PATH):
        seed(path, args.preload, "preload")  # as many rows as the peers benchmark's tables hold
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    client = Client(SERVER_NAME="localhost")
    n = args.requests
    calls: dict[str, float] = {}
    sides = (
        ("app", harness.WEBHOOK_PATH),
        ("bare", harness.BARE_PATH),
        ("drf", harness.DRF_PATH),
        ("upload", harness.UPLOAD_PATH),
    )
    for name, path in sides:
        deliver(client, path, seed(path, 50, f"warm{name}"))
        rows = seed(path, (args.rounds + 2) * n, name)
        runs = [measure(client, path, rows[i * n : (i + 1) * n]) for i in range(args.rounds)]
        best = {key: min(run[key] for run in runs) for key in runs[0]}
        count = statements(client, path, rows[args.rounds * n : (args.rounds + 1) * n])
        rows = rows[(args.rounds + 1) * n :]
        spread = ", ".join(f"{run['cpu_ms']:.2f}" for run in runs)
        print(
            f"{name}: {best['cpu_ms']:.2f} ms CPU per first delivery (unprofiled; rounds {spread}),"
            f" PostgreSQL backend {best['db_cpu_ms']:.2f} ms, {count:.1f} statements"
            f" (BEGIN/COMMIT included), {best['wal_bytes']:.0f} WAL bytes,"
            f" {best['buffers']:.0f} shared buffers"
        )
        for key, value in best.items():
            if key.startswith("hot "):
                print(f"  HOT share of the updates of {key[4:]}: {value:.1%} (best round)")
        stats = profiled(client, path, rows)
        calls[name] = calls_per_delivery(stats, n)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(args.save / f"{name}.pstats")
        if name == "app":
            report_steps(stats, n)
            if args.top:
                report_top(stats, n, args.top)
        print(f"  Python function calls per delivery: {calls[name]:.0f} (deterministic)")
    print(
        f"calls per delivery: app {calls['app']:.0f}, bare {calls['bare']:.0f}"
        f" ({calls['app'] / calls['bare']:.2f}x), drf {calls['drf']:.0f}"
        f" ({calls['app'] / calls['drf']:.2f}x), upload {calls['upload']:.0f}"
        f" ({calls['app'] / calls['upload']:.2f}x)"
    )
    print("(profiled: cProfile's own overhead inflates every figure about equally)")


if __name__ == "__main__":
    main()
