"""The index audit's evidence: EXPLAIN ANALYZE, at 100k tasks, of every query of the app that
an index dropped by migration 0007 used to serve, with the index and without it.

    python -m bench.explain [--tasks 100000] [--repeat 5]

Runs on its own database (``BENCH_EXPLAIN_DATABASE_URL``, default ``tm_bench_explain``), migrated
to 0006 (every index as before), seeded by SQL with a site's shape: 100k tasks in 50k submissions
(a video and a poster each) created over 180 days, 98 % succeeded, 1.5 % failed, 0.3 % stale
``pending``/``processing``, the last few hundred in flight; two webhook events per task.
Each query is built with the app's own functions and querysets (resync, health, the API's and
the admin's filters, the CLI), then explained ``--repeat`` times with the indexes and ``--repeat``
times inside a transaction that dropped them (rolled back); the plan of the last run and the
median execution time of each are printed as Markdown.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
from collections.abc import Callable
from typing import Any

os.environ.setdefault(
    "BENCH_DATABASE_URL",
    os.environ.get(
        "BENCH_EXPLAIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tm_bench_explain"
    ),
)

from . import harness, seed_sql

SEED_SQL = (
    seed_sql.RESET
    + seed_sql.INSERT_SUBMISSIONS
    + """
SELECT 'sub_' || md5(i::text)::varchar(16), 'tapestry_media/uploads/' || i || '/clip.mp4', 1000000,
       'video/mp4', 'video', 'clip ' || i,
       CASE WHEN i % 10 = 0 THEN 'summer-' || (i % 7) ELSE '' END, '', '{}',
       CASE WHEN i > %(n)s - 150 THEN 'processing' WHEN i % 67 = 0 THEN 'failed'
            WHEN i % 97 = 0 THEN 'partial' ELSE 'ready' END,
       0, now() - (%(n)s - i) * interval '311 seconds',
       now() - (%(n)s - i) * interval '311 seconds' + interval '3 minutes', NULL
FROM generate_series(1, %(n)s) AS i;
"""
    + seed_sql.INSERT_TASKS
    + """
SELECT s.id, md5(s.id::text || step)::uuid, CASE step WHEN 0 THEN 'video' ELSE 'poster' END, 0,
       step = 0, CASE step WHEN 0 THEN 'video' ELSE 'image' END,
       'https://tapestry-app.com/media/' || s.file, '{"width": 1280, "format": "mp4"}',
       jsonb_build_object('user_id', 'usr_' || (s.id % 500), 'submission_id', s.public_id,
                          'campaign', s.campaign, 'tapestry_task', md5(s.id::text || step)),
       t.status, t.status, 'ittybit',
       CASE WHEN t.status = 'created' THEN NULL ELSE 'task_' || s.id || '_' || step END,
       NULL, '', NULL, NULL, 0, 1, '[]', 0, NULL,
       s.created_at, s.created_at + interval '3 minutes', s.created_at, s.created_at,
       s.created_at + interval '3 minutes'
FROM tapestry_media_submission s CROSS JOIN generate_series(0, 1) AS step
CROSS JOIN LATERAL (SELECT CASE
    WHEN s.id > %(n)s - 40
      THEN (ARRAY['created', 'submitting', 'pending', 'processing'])[1 + (s.id + step) % 4]
    WHEN s.id > %(n)s - 150 THEN 'processing'
    WHEN s.id % 67 = 0 THEN 'failed'
    WHEN s.id % 97 = 0 AND step = 1 THEN 'failed'
    WHEN (s.id + step) % 331 = 0 THEN 'pending'
    ELSE 'succeeded' END AS status) AS t;
INSERT INTO tapestry_media_webhookevent
  (dedup_key, event_id, topic, source, remote_task_id, raw_status, body, headers,
   signature_scheme, task_id, first_received_at, last_received_at, delivery_count,
   processed_at, error)
SELECT 'event:evt_' || t.id || '_' || k, 'evt_' || t.id || '_' || k,
       CASE k WHEN 0 THEN 'task.updated' ELSE 'task.succeeded' END, 'webhook', t.remote_id,
       t.status, '{}', '{}', 'ittybit', t.id, t.updated_at, t.updated_at, 1, t.updated_at, ''
FROM tapestry_media_task t CROSS JOIN generate_series(0, 1) AS k WHERE t.remote_id IS NOT NULL;
"""
)


def seed(submissions: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL.replace("%(n)s", str(int(submissions))))
        cursor.execute("VACUUM ANALYZE")


def queries() -> list[tuple[str, str, Callable[[], Any]]]:
    """(what, where in the code, the queryset) for every query the dropped indexes could serve."""
    from django.db.models import Count
    from django.utils import timezone

    from tapestry_media import health, resync
    from tapestry_media.cli import select
    from tapestry_media.conf import get_settings
    from tapestry_media.models import Submission, Task

    now = timezone.now()
    cutoff = now - get_settings().STALE_AFTER

    def claim(q: Any) -> Any:  # resync._claim's statement
        rows = Task.objects.filter(q).select_for_update(skip_locked=True, of=("self",))
        return rows.order_by("pk").values_list("pk", flat=True)[: resync.BATCH_SIZE]

    return [
        ("resync: stale pending/processing, the backends", "resync._split_by_get_support",
         lambda: Task.objects.filter(resync._stale_remote(cutoff)).values_list("backend")),
        ("resync: claim stale pending/processing", "resync._claim",
         lambda: claim(resync._stale_remote(cutoff) & resync.Q(backend__in=["ittybit"]))),
        ("resync: claim created/submitting", "resync._claim",
         lambda: claim(resync._stuck_before_the_api(cutoff))),
        ("resync --failed: claim failed of the current generation", "resync._claim",
         lambda: claim(resync._failed_current(cutoff))),
        ("status: oldest created task", "health._oldest",
         lambda: Task.objects.filter(status="created").order_by("updated_at")
         .values("pk", "updated_at", "next_attempt_at", "retries")[:1]),
        ("status: stranded submit jobs, count", "health.collect",
         lambda: Task.objects.filter(health.stranded_tasks(now, get_settings().STALE_AFTER))
         .values("pk")),
        ("status: tasks by status", "health._counts",
         lambda: Task.objects.order_by().values("status").annotate(n=Count("pk"))),
        ("status: submissions by status", "health._counts",
         lambda: Submission.objects.order_by().values("status").annotate(n=Count("pk"))),
        ("API GET /tasks/?status=failed (first page)", "api.views TaskList + NewestFirst",
         lambda: Task.objects.select_related("submission").filter(status__in=["failed"])
         .order_by("-pk")[:26]),
        ("API GET /submissions/?status=failed (first page)", "api.views SubmissionList",
         lambda: Submission.objects.filter(status__in=["failed"]).order_by("-pk")[:26]),
        ("admin tasks, filter status=pending", "admin TaskAdmin list_filter",
         lambda: Task.objects.select_related("submission").filter(status="pending")
         .order_by("-pk")[:100]),
        ("admin submissions, filter status=failed", "admin SubmissionAdmin list_filter",
         lambda: Submission.objects.filter(status="failed")[:100]),
        ("CLI tasks --status processing", "cli.select",
         lambda: select(status="processing")[:100]),
    ]  # fmt: skip


def explain(sql: str, params: Any, repeat: int, drop: list[str]) -> tuple[float, list[str]]:
    from django.db import connection, transaction

    times, plan = [], []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for name in drop:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
            for _ in range(repeat):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = [row[0] for row in cursor.fetchall()]
                times.append(float(plan[-1].split(":")[1].split()[0]))
        transaction.set_rollback(True)
    return statistics.median(times), plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-seed", action="store_true", help="reuse the seeded rows")
    args = parser.parse_args()
    harness.ensure_database()
    harness.setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", "tapestry_media", "0006", verbosity=0, interactive=False)
    drop = importlib.import_module("tapestry_media.migrations.0007_drop_unused_indexes")
    if not args.no_seed:
        seed(args.tasks // 2)
    print(f"# EXPLAIN ANALYZE at {args.tasks} tasks; median of {args.repeat} runs each\n")
    print("Dropped: " + ", ".join(f"`{n}`" for n in drop.POSTGRESQL_DROPPED) + "\n")
    from django.db import transaction

    for what, where, build in queries():
        with transaction.atomic():  # select_for_update compiles only inside one
            sql, params = build().query.sql_with_params()
        before, plan_before = explain(sql, params, args.repeat, [])
        after, plan_after = explain(sql, params, args.repeat, list(drop.POSTGRESQL_DROPPED))
        print(f"## {what} (`{where}`): {before:.2f} ms → {after:.2f} ms\n")
        print("```sql\n" + (sql % tuple(f"'{p}'" for p in params)) + "\n```\n")
        print("with the indexes (0006):\n\n```\n" + "\n".join(plan_before) + "\n```\n")
        print("without them (0007):\n\n```\n" + "\n".join(plan_after) + "\n```\n")


if __name__ == "__main__":
    main()
