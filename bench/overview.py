"""The admin overview page at 100k submissions / 200k tasks on PostgreSQL, timed in-process
through the test client.

    python -m bench.overview [--submissions 100000] [--rounds 15] [--explain] [--reseed]

Uses its own database (``BENCH_OVERVIEW_DATABASE_URL``, default ``tm_overview_bench`` on
127.0.0.1), created, migrated and seeded by SQL on the first run and reused afterwards: the
uploads spread evenly over the last 30 days, two tasks each (a video and a poster); 97 % ready,
1.5 % failed (five error kinds), 1 % partial, the last few hundred in flight and 0.3 % of
the tasks stale ``pending``. Prints p50/p95 of the page's server time (the request through the
test client) and of the time spent in SQL, and the number of queries; ``--explain`` prints
EXPLAIN (ANALYZE, BUFFERS) of every query of the page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from . import admin_search, seed_sql

DATABASE_URL = os.environ.get(
    "BENCH_OVERVIEW_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tm_overview_bench"
)
TARGET_MS = 300

SEED_SQL = (
    seed_sql.RESET
    + seed_sql.INSERT_SUBMISSIONS
    + """
SELECT 'sub_' || md5(i::text)::varchar(16), 'tapestry_media/uploads/' || i || '/clip.mp4', 1000000,
       'video/mp4', 'video', 'clip ' || i, '', '', '{}', t.status, 0, t.created,
       t.created + interval '1 second' * t.took,
       CASE WHEN t.status IN ('ready', 'partial', 'failed')
            THEN t.created + interval '1 second' * t.took END
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (SELECT
    now() - interval '30 days' * (%(n)s - i + 0.5) / %(n)s AS created,
    -- 20 s to ~10 min, a long tail for one upload in 50
    20 + (i * 7919) % 300 + CASE WHEN i % 50 = 0 THEN 3000 + (i % 7) * 400 ELSE 0 END AS took,
    CASE WHEN i > %(n)s - 120 THEN 'processing' WHEN i > %(n)s - 160 THEN 'pending'
         WHEN i % 67 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'partial' ELSE 'ready' END AS status
  ) AS t;
"""
    + seed_sql.INSERT_TASKS
    + """
SELECT s.id, md5(s.id::text || step)::uuid, CASE step WHEN 0 THEN 'video' ELSE 'poster' END, 0,
       step = 0, CASE step WHEN 0 THEN 'video' ELSE 'image' END,
       'https://tapestry-app.com/media/' || s.file, '{"width": 1280, "format": "mp4"}',
       jsonb_build_object('user_id', 'usr_' || (s.id % 500), 'submission_id', s.public_id,
                          'tapestry_task', md5(s.id::text || step)),
       t.status, t.status, 'ittybit', 'task_' || s.id || '_' || step, NULL, '',
       CASE WHEN t.status = 'failed' THEN jsonb_build_object(
         'kind', (ARRAY['decode_error', 'timeout', 'invalid_input', 'step_failed', ''])
                 [1 + s.id % 5], 'message', 'it failed') END,
       NULL, 0, 1, '[]', 0, NULL, s.created_at, coalesce(s.processed_at, s.updated_at),
       s.created_at, s.created_at, s.processed_at
FROM tapestry_media_submission s CROSS JOIN generate_series(0, 1) AS step
CROSS JOIN LATERAL (SELECT CASE
    WHEN s.status = 'processing' THEN (ARRAY['created', 'submitting', 'pending', 'processing'])
                                      [1 + (s.id + step) % 4]
    WHEN s.status = 'pending' THEN 'created'
    WHEN s.status = 'failed' AND step = 0 THEN 'failed'
    WHEN s.status = 'failed' THEN 'cancelled'
    WHEN s.status = 'partial' AND step = 1 THEN 'failed'
    WHEN (s.id + step) % 331 = 0 THEN 'pending'
    ELSE 'succeeded' END AS status) AS t;
"""
)


def seed(submissions: int, again: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from tapestry_media.models import Submission

    User = get_user_model()
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "pw")
    if not again and Submission.objects.count() == submissions:
        return
    print(f"seeding {submissions} submissions, {2 * submissions} tasks …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL.replace("%(n)s", str(int(submissions))))
        cursor.execute("VACUUM ANALYZE")
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(rounds: int, explain: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    url = reverse("admin:tapestry_media_task_overview")
    assert client.get(url).status_code == 200  # warm-up
    pages, sql, counts = [], [], []
    per_query: list[list[float]] = []
    captured: list[dict[str, str]] = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            pages.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        times = [float(q["time"]) * 1000 for q in queries.captured_queries]
        sql.append(sum(times))
        counts.append(len(times))
        per_query.append(times)
        captured = queries.captured_queries
    p50, p95 = statistics.median(pages), percentile(pages, 0.95)
    print(
        f"overview page, {rounds} rounds: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"(SQL p50 {statistics.median(sql):.1f} ms), {max(counts)} queries "
        f"{'ok' if p95 <= TARGET_MS else f'OVER {TARGET_MS} ms'}"
    )
    for i, query in enumerate(captured):
        median = statistics.median(row[i] for row in per_query if i < len(row))
        print(f"  query {i + 1:2d}: {median:6.1f} ms  {query['sql'][:110]}")
    if explain:
        with connection.cursor() as cursor:
            for i, query in enumerate(captured):
                if not query["sql"].lstrip().upper().startswith("SELECT"):
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                print(f"\n--- query {i + 1}\n{query['sql']}\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    admin_search.setup(DATABASE_URL)
    seed(args.submissions, args.reseed)
    from tapestry_media.models import Submission, Task

    print(f"{Submission.objects.count()} submissions, {Task.objects.count()} tasks")
    measure(args.rounds, args.explain)


if __name__ == "__main__":
    main()
