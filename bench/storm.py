"""Webhook storm: about 2,000 deliveries — every event three times, shuffled — against the example
site under gunicorn on PostgreSQL, from concurrent keep-alive clients.

    python -m bench.storm [--tasks 222] [--copies 3] [--concurrency 16] [--seed 7]

Each task gets three events (``processing`` at 30 %, ``processing`` at 70 %, ``succeeded``), half
as bare task objects (the seed's shape), half as event envelopes; one task in ten has no remote
id yet (its create call "has not returned": the events find it by the correlation key). Checked
on the server side afterwards: every answer a 200 (zero 5xx, zero transport errors), one
WebhookEvent row per distinct event with ``delivery_count`` equal to its copies, all processed
without error and matched; every task ``succeeded`` at 100 % with its output and remote id;
every submission ``ready``.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from typing import Any

from . import harness


def run(
    *, tasks: int = 222, copies: int = 3, concurrency: int = 16, seed: int = 7,
    workers: int = 2, threads: int = 4,
) -> dict[str, Any]:  # fmt: skip
    from django.db.models import Sum

    from tapestry_media.models import Submission, Task, WebhookEvent

    harness.reset_tables()
    rng = random.Random(seed)
    rows = harness.seed_tasks(tasks, prefix="storm")
    late = rows[::10]
    Task.objects.filter(pk__in=[t.pk for t in late]).update(status="submitting", remote_id=None)
    expected_remote = {t.pk: t.remote_id for t in rows}
    for task in late:
        task.remote_id = None
    events: list[bytes] = []
    for index, task in enumerate(rows):
        envelope = index % 2 == 1
        events.append(harness.task_body(task, "processing", progress=30, event=envelope))
        events.append(harness.task_body(task, "processing", progress=70, event=envelope))
        events.append(harness.task_body(task, "succeeded", event=envelope))
    deliveries = [(harness.WEBHOOK_PATH, body) for body in events for _ in range(copies)]
    rng.shuffle(deliveries)

    with harness.gunicorn(workers=workers, threads=threads) as server:
        load = harness.post_all(server.port, deliveries, concurrency=concurrency)

    problems: list[str] = []
    if load.statuses != {200: len(deliveries)}:
        problems.append(f"answers {dict(load.statuses)}")
    rows_count = WebhookEvent.objects.count()
    if rows_count != len(events):
        problems.append(f"{rows_count} event rows for {len(events)} distinct events")
    counts = Counter(WebhookEvent.objects.values_list("delivery_count", flat=True))
    if counts != {copies: len(events)}:
        problems.append(f"delivery counts {dict(counts)}")
    total = WebhookEvent.objects.aggregate(total=Sum("delivery_count"))["total"]
    unprocessed = WebhookEvent.objects.filter(processed_at__isnull=True).count()
    failed = WebhookEvent.objects.exclude(error="").count()
    unmatched = WebhookEvent.objects.filter(task__isnull=True).count()
    if unprocessed or failed or unmatched:
        problems.append(f"{unprocessed} unprocessed, {failed} failed, {unmatched} unmatched")
    states = Counter(Task.objects.values_list("status", "progress"))
    if states != {("succeeded", 100): tasks}:
        problems.append(f"task states {dict(states)}")
    missing_output = Task.objects.filter(output_url="").count()
    if missing_output:
        problems.append(f"{missing_output} tasks without an output URL")
    wrong_remote = sum(
        1
        for pk, remote_id in Task.objects.values_list("pk", "remote_id")
        if remote_id != (expected_remote[pk] or None) and pk not in {t.pk for t in late}
    )
    late_unset = Task.objects.filter(pk__in=[t.pk for t in late], remote_id__isnull=True).count()
    if wrong_remote or late_unset:
        problems.append(f"{wrong_remote} wrong remote ids, {late_unset} late tasks unmatched")
    submissions = Counter(Submission.objects.values_list("status", flat=True))
    if set(submissions) != {"ready"}:
        problems.append(f"submission states {dict(submissions)}")
    return {
        "deliveries": len(deliveries),
        "events": len(events),
        "tasks": tasks,
        "load": load,
        "server_deliveries": total,
        "fivexx": sum(n for s, n in load.statuses.items() if isinstance(s, int) and s >= 500),
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=222)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    harness.prepare()
    result = run(tasks=args.tasks, copies=args.copies, concurrency=args.concurrency, seed=args.seed)
    load = result["load"]
    print(
        f"storm: {result['deliveries']} deliveries of {result['events']} events in "
        f"{load.wall:.1f} s ({load.rate:.0f}/s), p50 {load.percentile(50) * 1000:.1f} ms, "
        f"p99 {load.percentile(99) * 1000:.1f} ms; answers {dict(load.statuses)}; "
        f"counted server side {result['server_deliveries']}"
    )
    print("OK" if not result["problems"] else "PROBLEMS: " + "; ".join(result["problems"]))
    raise SystemExit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
