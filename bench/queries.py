"""Queries per webhook delivery and the cost the app adds to an upload save.

    python -m bench.queries [--saves 200] [--rounds 5] [-v]

In-process on the bench database, through the full middleware stack (Django test client):

* queries of the app's webhook endpoint for a first delivery (matched by remote id, by the
  correlation key, as an event envelope), a duplicate and a stale report; the bare peer view's
  (``bench/views.py``, on its own minimal tables);
* an upload save (``Submission.objects.create`` with a 1 KiB file) with the app's receivers and
  with them disconnected: queries (including the job inserts after commit) and wall time,
  interleaved blocks, median per save.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import harness


def count(action: Callable[[], Any]) -> tuple[int, list[str], Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = action()
    return len(captured), [q["sql"] for q in captured.captured_queries], result


def webhook_queries() -> dict[str, tuple[int, list[str]]]:
    from django.test import Client

    from tapestry_media.models import Task

    client = Client(HTTP_HOST="127.0.0.1")

    def post(path: str, body: bytes) -> Any:
        headers = harness.sign(body)
        del headers["Content-Type"]
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 200, (response.status_code, response.content)
        return response.json()

    results: dict[str, tuple[int, list[str]]] = {}
    warm = harness.seed_tasks(2, prefix="qwarm")
    post(harness.WEBHOOK_PATH, harness.task_body(warm[0], "succeeded"))
    post(
        harness.BARE_PATH,
        harness.task_body(harness.seed_peer_tasks(1, prefix="qwarm")[0], "succeeded"),
    )

    task = harness.seed_tasks(2, prefix="q1")[0]
    body = harness.task_body(task, "succeeded")
    n, sql, data = count(lambda: post(harness.WEBHOOK_PATH, body))
    assert data["status"] == "applied", data
    results["first delivery (by remote id)"] = (n, sql)
    n, sql, data = count(lambda: post(harness.WEBHOOK_PATH, body))
    assert data["status"] == "duplicate", data
    results["duplicate delivery"] = (n, sql)
    n, sql, data = count(
        lambda: post(harness.WEBHOOK_PATH, harness.task_body(task, "processing", progress=50))
    )
    assert data["status"] == "stale", data
    results["late 'processing' after success"] = (n, sql)

    task = harness.seed_tasks(2, prefix="q2")[0]
    n, sql, data = count(
        lambda: post(harness.WEBHOOK_PATH, harness.task_body(task, "succeeded", event=True))
    )
    assert data["status"] == "applied", data
    results["first delivery (event envelope)"] = (n, sql)

    task = harness.seed_tasks(2, prefix="q3", remote_ids=False)[0]
    Task.objects.filter(pk=task.pk).update(status="submitting")
    n, sql, data = count(lambda: post(harness.WEBHOOK_PATH, harness.task_body(task, "succeeded")))
    assert data["status"] == "applied", data
    results["first delivery (by correlation key, before the create returned)"] = (n, sql)

    peer = harness.seed_peer_tasks(1, prefix="q4")[0]
    n, sql, data = count(lambda: post(harness.BARE_PATH, harness.task_body(peer, "succeeded")))
    results["bare view (its own minimal tables)"] = (n, sql)
    return results


@contextmanager
def receivers_disconnected() -> Iterator[None]:
    from django.db.models.signals import post_save, pre_save

    from tapestry_media import receivers
    from tapestry_media.models import Submission

    uid = "tapestry_media"  # as in apps.py
    pairs = [
        (pre_save, receivers.prepare_upload, f"{uid}.pre"),
        (post_save, receivers.submit_upload, f"{uid}.post"),
    ]
    for signal, _, dispatch_uid in pairs:
        assert signal.disconnect(sender=Submission, dispatch_uid=dispatch_uid), dispatch_uid
    try:
        yield
    finally:
        for signal, receiver, dispatch_uid in pairs:
            signal.connect(receiver, sender=Submission, dispatch_uid=dispatch_uid)


def save_upload() -> Any:
    from django.core.files.base import ContentFile
    from django.db import transaction

    from tapestry_media.models import Submission

    with transaction.atomic():  # the commit runs the on-commit job enqueues inside the count
        return Submission.objects.create(
            file=ContentFile(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1012, name="clip.mp4"),
            title="bench",
        )


def upload_cost(saves: int, rounds: int) -> dict[str, Any]:
    from tapestry_media.models import Submission

    with_app, sql_app, created = count(save_upload)
    assert created.tasks.count() == 2, "the app's receivers did not create the pipeline's tasks"
    with receivers_disconnected():
        plain, sql_plain, created = count(save_upload)
        assert created.tasks.count() == 0
    times: dict[str, list[float]] = {"app": [], "plain": []}
    for round_ in range(rounds):
        order = ("app", "plain") if round_ % 2 == 0 else ("plain", "app")
        for which in order:
            started = time.perf_counter()
            if which == "app":
                for _ in range(saves):
                    save_upload()
            else:
                with receivers_disconnected():
                    for _ in range(saves):
                        save_upload()
            times[which].append((time.perf_counter() - started) / saves * 1000)
    Submission.objects.filter(title="bench").delete()
    return {
        "queries": {"app": with_app, "plain": plain},
        "sql": {"app": sql_app, "plain": sql_plain},
        "ms": times,
        "added_ms": statistics.median(times["app"]) - statistics.median(times["plain"]),
    }


def run(*, saves: int = 200, rounds: int = 5) -> dict[str, Any]:
    harness.reset_tables()
    return {"webhooks": webhook_queries(), "upload": upload_cost(saves, rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-v", "--verbose", action="store_true", help="print the SQL")
    args = parser.parse_args()
    harness.prepare()
    result = run(saves=args.saves, rounds=args.rounds)
    for label, (n, sql) in result["webhooks"].items():
        print(f"{n:3d} queries  {label}")
        if args.verbose:
            for statement in sql:
                print(f"        {statement[:160]}")
    upload = result["upload"]
    print(
        f"upload save: {upload['queries']['app']} queries with the app, "
        f"{upload['queries']['plain']} without; {harness.spread(upload['ms']['app'], '{:.2f}')} ms"
        f" vs {harness.spread(upload['ms']['plain'], '{:.2f}')} ms per save "
        f"(+{upload['added_ms']:.2f} ms)"
    )
    if args.verbose:
        for which in ("app", "plain"):
            print(f"  {which}:")
            for statement in upload["sql"][which]:
                print(f"        {statement[:160]}")


if __name__ == "__main__":
    main()
