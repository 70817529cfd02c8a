"""Admin changelists and searches at scale: 100k submissions, 200k tasks, 100k webhook events
(most of them progress ticks) on PostgreSQL, timed in-process through the test client.

    python -m bench.admin_search [--submissions 100000] [--rounds 7] [--explain]

Uses its own database (``BENCH_ADMIN_DATABASE_URL``, default ``tm_admin_search`` on
127.0.0.1), created and seeded on the first run and reused afterwards. Each page is requested
``--rounds`` times after one warm-up; the median and the slowest are printed with the number of
queries. ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of each page's slowest query.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tm_admin_search"
)
USERS = 1000
TARGET_MS = 200


def setup(url: str = DATABASE_URL) -> None:
    """This process on the tests' settings and the database at ``url`` (created if missing,
    migrated)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = url
    import django
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)


def seed(submissions: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from tapestry_media.models import Submission, Task, WebhookEvent

    if Submission.objects.count() >= submissions:
        return
    print(f"seeding {submissions} submissions, {2 * submissions} tasks …", flush=True)
    rng = random.Random(20261204)
    User = get_user_model()
    User.objects.bulk_create(
        [User(username=f"user{n}", email=f"user{n}@example.com") for n in range(USERS)],
        ignore_conflicts=True,
    )
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "pw")
    users = list(User.objects.filter(username__startswith="user").values_list("pk", flat=True))
    statuses = ["ready"] * 8 + ["processing", "failed"]
    batch = 5000
    for start in range(Submission.objects.count(), submissions, batch):
        rows = []
        for n in range(start, min(start + batch, submissions)):
            rows.append(
                Submission(
                    uploader_id=rng.choice(users),
                    file=f"tapestry_media/uploads/{n}.mp4",
                    media_kind="video",
                    title=f"Holiday clip {n}",
                    campaign=rng.choice(["summer-launch", "spring", "autumn", ""]),
                    source=rng.choice(["ios", "android", "web"]),
                    status=rng.choice(statuses),
                )
            )
        created = Submission.objects.bulk_create(rows)
        tasks = []
        for sub in created:
            for name, kind in (("video", "video"), ("poster", "image")):
                key = uuid.uuid4()
                tasks.append(
                    Task(
                        submission=sub,
                        name=name,
                        kind=kind,
                        is_primary=name == "video",
                        input=sub.file.name,
                        backend="ittybit",
                        uuid=key,
                        remote_id=f"task_{key.hex[:20]}",
                        status="succeeded" if sub.status == "ready" else sub.status,
                        metadata={
                            "user_id": f"usr_{sub.uploader_id}",
                            "submission_id": sub.public_id,
                            "campaign": sub.campaign,
                            "source": sub.source,
                            "tapestry_task": str(key),
                        },
                    )
                )
        made = Task.objects.bulk_create(tasks)
        events = [
            WebhookEvent(
                dedup_key=f"event:evt_{t.uuid.hex}_{tick}",
                remote_task_id=t.remote_id or "",
                raw_status="processing" if tick else t.status,
                topic="task.updated" if tick else f"task.{t.status}",
                body="{}",
                task=t,
                processed_at=sub_now(),
            )
            for t in made[::4]
            for tick in range(2)
        ]
        WebhookEvent.objects.bulk_create(events)
        print(f"  {start + len(created)}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def sub_now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


PAGES = [
    ("task list", "task", {}),
    ("task search usr_17", "task", {"q": "usr_17"}),
    ("task search remote id", "task", {"q": "@remote"}),
    ("task filter failed", "task", {"status__exact": "failed"}),
    ("submission list", "submission", {}),
    ("submission search usr_17", "submission", {"q": "usr_17"}),
    ("submission search public id", "submission", {"q": "@public"}),
    ("submission search title", "submission", {"q": "Holiday clip 4242"}),
    ("submission filter ready", "submission", {"status__exact": "ready"}),
    ("event list (ticks hidden)", "webhookevent", {}),
    ("event list (all)", "webhookevent", {"ticks": "shown"}),
]


def measure(rounds: int, explain: bool) -> list[tuple[str, float, float, float, int]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from tapestry_media.models import Submission, Task

    client = Client()
    client.force_login(get_admin())
    sample_task = Task.objects.order_by("pk")[5000]
    sample_sub = Submission.objects.order_by("pk")[5000]
    results = []
    for label, model, params in PAGES:
        params = {
            k: (
                sample_task.remote_id
                if v == "@remote"
                else sample_sub.public_id
                if v == "@public"
                else v
            )
            for k, v in params.items()
        }
        url = reverse(f"admin:tapestry_media_{model}_changelist")
        assert client.get(url, params).status_code == 200
        times, sql = [], []
        for _ in range(rounds):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, params)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, response.status_code)
            sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        results.append(
            (label, statistics.median(times), max(times), statistics.median(sql), len(queries))
        )
        if explain:
            slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            print(f"\n--- {label}: slowest query ({slowest['time']} s)\n{slowest['sql']}\n{plan}")
    return results


def get_admin():  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    setup()
    seed(args.submissions)
    from tapestry_media.models import Submission, Task, WebhookEvent

    print(
        f"{Submission.objects.count()} submissions, {Task.objects.count()} tasks, "
        f"{WebhookEvent.objects.count()} events; {args.rounds} rounds; page: median (max) ms; "
        "SQL: median ms spent in the database"
    )
    results = measure(args.rounds, args.explain)
    width = max(len(label) for label, *_ in results)
    for label, median, worst, sql, queries in results:
        verdict = "ok" if median <= TARGET_MS else f"over {TARGET_MS} ms"
        print(
            f"{label:<{width}}  page {median:7.1f} ({worst:7.1f})  SQL {sql:6.1f}  "
            f"{queries:2d} queries  {verdict}"
        )


if __name__ == "__main__":
    main()
