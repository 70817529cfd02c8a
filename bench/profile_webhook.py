"""Where a first delivery's CPU goes: the app's endpoint and the bare peer view, in-process.

    python -m bench.profile_webhook [--requests 300]

Each endpoint gets ``--requests`` first deliveries through Django's test client (full middleware
stack) on the bench database: once unprofiled for the CPU per delivery (``time.process_time``),
once under cProfile with the same CPU clock, whose cumulative times per step of the app's path
are printed per delivery and as a share of the whole request.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
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


def deliver(client: Any, path: str, rows: list[Any]) -> None:
    for row in rows:
        body = harness.task_body(row, "succeeded")
        response = client.post(
            path, body, content_type="application/json", headers=harness.sign(body)
        )
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.content[:200]!r}")


def seed(path: str, count: int, prefix: str) -> list[Any]:
    if path == harness.WEBHOOK_PATH:
        return list(harness.seed_tasks(count, prefix=prefix, steps=1))
    return list(harness.seed_peer_tasks(count, prefix=prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    harness.prepare()
    from django.test import Client

    harness.reset_tables()
    client = Client(SERVER_NAME="localhost")
    n = args.requests
    for name, path in (("app", harness.WEBHOOK_PATH), ("bare", harness.BARE_PATH)):
        deliver(client, path, seed(path, 50, f"warm{name}"))
        rows = seed(path, 2 * n, name)
        started = time.process_time()
        deliver(client, path, rows[:n])
        cpu = (time.process_time() - started) / n * 1000
        print(f"{name}: {cpu:.2f} ms CPU per first delivery (unprofiled)")
        if name != "app":
            continue
        profile = cProfile.Profile(time.process_time)
        profile.runcall(deliver, client, path, rows[n:])
        stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        whole = None
        for label, suffix, function in STEPS:
            total = sum(
                value[3]
                for (filename, _, func), value in stats.items()
                if filename.endswith(suffix) and func == function
            )
            whole = whole or total
            print(f"  {label:<48} {total / n * 1000:7.2f} ms  {total / whole:6.1%}")
        print("  (profiled: cProfile's own overhead inflates every figure about equally)")


if __name__ == "__main__":
    main()
