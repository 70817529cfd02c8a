"""The task input lookup (``api.views.own_submission``) at 20k submissions: EXPLAIN ANALYZE
before and after migration 0011 (the index on ``Submission.file``).

    python -m bench.explain_input [--submissions 20000] [--users 500] [--repeat 5]

Runs on its own PostgreSQL database (``BENCH_INPUT_DATABASE_URL``, default
``tm_lookup_bench``), seeded by SQL: ``--users`` uploaders, ``--submissions`` uploads spread
over them with the names the app stores (``tapestry_media/uploads/<public id>/<file>``). The
inputs: one user's own upload by public id and by file name, another user's public id
(refused), and an upload by either with ``submit_any_input`` (no uploader filter). "before" is
the schema at 0010 with the lookup as it was, one ``public_id = … OR file = …``; "after" is
0011 with ``own_submission`` as it is (its statements captured as it runs); then the old OR
again on 0011. Prints each plan and the median execution time of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from typing import Any

os.environ.setdefault(
    "BENCH_DATABASE_URL",
    os.environ.get(
        "BENCH_INPUT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tm_lookup_bench"
    ),
)

from . import harness, seed_sql

SEED_SQL = (
    seed_sql.RESET
    + """
DELETE FROM auth_user WHERE username LIKE 'bench-input-%%';
INSERT INTO auth_user (username, password, first_name, last_name, email, is_superuser, is_staff,
                       is_active, date_joined)
SELECT 'bench-input-' || u, '!', '', '', '', false, false, true, now()
FROM generate_series(1, %(users)s) AS u;
"""
    + seed_sql.INSERT_SUBMISSIONS.replace("(public_id,", "(uploader_id, public_id,")
    + """
SELECT (SELECT min(id) FROM auth_user WHERE username LIKE 'bench-input-%%') + i %% %(users)s,
       'sub_' || left(md5(i::text), 16),
       'tapestry_media/uploads/sub_' || left(md5(i::text), 16) || '/clip-' || i || '.mp4',
       1000000, 'video/mp4', 'video', 'clip ' || i, '', '', '{}', 'ready', 0,
       now() - (%(n)s - i) * interval '311 seconds',
       now() - (%(n)s - i) * interval '311 seconds' + interval '3 minutes', NULL
FROM generate_series(1, %(n)s) AS i;
"""
)


def seed(submissions: int, users: int) -> None:
    from django.db import connection

    sql = SEED_SQL.replace("%(n)s", str(int(submissions))).replace("%(users)s", str(int(users)))
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("%%", "%"))
        cursor.execute("VACUUM ANALYZE")


def old_lookup(user: Any, value: str, *, any_input: bool) -> Any:
    """``own_submission`` before migration 0011: one query, an OR of both columns."""
    from django.db.models import Q

    from tapestry_media.models import Submission

    rows = Submission.objects.filter(Q(public_id=value) | Q(file=value))
    return (rows if any_input else rows.filter(uploader=user)).first()


def statements(lookup: Callable[[], Any]) -> list[str]:
    """The SQL ``lookup()`` runs, as sent."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        lookup()
    return [q["sql"] for q in queries.captured_queries]


def explain(sql: str, repeat: int) -> tuple[float, list[str]]:
    from django.db import connection

    times, plan = [], []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = [row[0] for row in cursor.fetchall()]
            times.append(float(plan[-1].split(":")[1].split()[0]))
    return statistics.median(times), plan


def report(label: str, lookups: dict[str, Callable[[], Any]], repeat: int) -> None:
    for what, lookup in lookups.items():
        for sql in statements(lookup):
            took, plan = explain(sql, repeat)
            print(f"### {label}: {what}: {took:.3f} ms\n")
            print("```sql\n" + sql + "\n```\n\n```\n" + "\n".join(plan) + "\n```\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=500, help="uploaders the rows spread over")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    harness.ensure_database()
    harness.setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from tapestry_media.api.views import own_submission
    from tapestry_media.models import Submission

    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", "tapestry_media", "0010", verbosity=0, interactive=False)
    seed(args.submissions, args.users)
    middle = Submission.objects.order_by("pk")[args.submissions // 2]
    user = get_user_model().objects.get(pk=middle.uploader_id)
    other = Submission.objects.order_by("pk")[args.submissions // 3]
    cases = {
        "own, by public id": (middle.public_id, False),
        "own, by file name": (middle.file.name, False),
        "any input (submit_any_input), by public id": (other.public_id, True),
        "any input (submit_any_input), by file name": (other.file.name, True),
    }
    if other.uploader_id != user.pk:
        cases["another user's public id"] = (other.public_id, False)
    print(f"# The task input lookup at {args.submissions} submissions, {args.users} users\n")
    old = {
        what: (lambda v=value, a=any_input: old_lookup(user, v, any_input=a))
        for what, (value, any_input) in cases.items()
    }
    report("before (0010, OR)", old, args.repeat)
    call_command("migrate", "tapestry_media", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tapestry_media_submission")
    new = {
        what: (lambda v=value, a=any_input: own_submission(user, v, any_input=a))
        for what, (value, any_input) in cases.items()
    }
    assert own_submission(user, middle.file.name, any_input=False) == middle
    assert own_submission(user, other.file.name, any_input=True) == other
    if other.uploader_id != user.pk:
        assert own_submission(user, other.public_id, any_input=False) is None
    report("after (0011)", new, args.repeat)
    report("0011 with the OR kept", old, args.repeat)


if __name__ == "__main__":
    main()
