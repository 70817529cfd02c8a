"""The queue leg: upload → submit → webhook → ready with real worker processes on
django-tasks-db (``db_worker``), django-tasks-rq (``rqworker --with-scheduler``, RQ's job class)
and django-tasks-celery (``celery worker -c 1`` on RabbitMQ), against the contract server with
transient create failures and duplicate webhooks.

Run only by ``scripts/test-queues.sh`` (``make test-queues``, a leg of ``.ci/run``): it needs
PostgreSQL (the workers share the test database), Redis and RabbitMQ, and the ``queues`` extra.
Every count is taken on the server side: the contract server's records, the database's rows.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tapestry_media.enqueue import enqueue_submit
from tapestry_media.models import Submission, Task, WebhookEvent
from tapestry_media.signals import task_succeeded
from tapestry_media.status import Status
from tapestry_media.testing.contract_server import (
    ContractServer,
    Fault,
)
from tapestry_media.testing.webhooks import closing_deliverer

from .helpers import cloud_settings, video_upload
from .queue_workers import BACKENDS, QUEUE, Backend, empty_the_queue

pytestmark = [pytest.mark.queues, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parent.parent
STALE_AFTER = timedelta(minutes=15)
EARLY = re.compile(r"task (\d+): submit job arrived ([\d.]+) s before its retry time")


WORKER_SETTINGS = """\
from tests.queue_settings import *  # noqa: F403

DATABASES["default"]["NAME"] = {name!r}  # noqa: F405
MEDIA_ROOT = {media!r}
TAPESTRY_MEDIA = {tapestry!r}
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"stderr": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{
        "tapestry_media": {{"handlers": ["stderr"], "level": "INFO", "propagate": False}},
    }},
}}
"""


class Worker:
    """One worker process of a backend, in its own process group, its output in a file."""

    def __init__(self, backend: Backend, root: Path, tapestry: dict[str, Any]) -> None:
        self.backend = backend
        module = root / "queue_worker_settings.py"
        module.write_text(
            WORKER_SETTINGS.format(
                name=connection.settings_dict["NAME"],
                media=str(django_settings.MEDIA_ROOT),
                tapestry=tapestry,
            )
        )
        self.log = root / f"worker-{backend.alias}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "queue_worker_settings",
            "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]),
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, *backend.command],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_ready(self, seconds: float = 60) -> None:
        wait_for(lambda: self.backend.ready in self.output(), seconds, "the worker", self)

    def early_arrivals(self) -> list[tuple[int, float]]:
        return [(int(pk), float(s)) for pk, s in EARLY.findall(self.output())]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> tuple[str, Backend]:
    empty_the_queue(request.param)
    return request.param, BACKENDS[request.param]


@pytest.fixture
def server() -> Iterator[ContractServer]:
    with ContractServer(deliver=closing_deliverer()) as running:
        yield running
        assert running.errors == []


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(backend: Backend) -> Worker:
        worker = Worker(backend, tmp_path, dict(django_settings.TAPESTRY_MEDIA))
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def successes() -> Iterator[Counter[int]]:
    seen: Counter[int] = Counter()

    def count(sender: Any, task: Task, **kwargs: Any) -> None:
        seen[task.pk] += 1

    task_succeeded.connect(count, weak=False, dispatch_uid="queue-successes")
    yield seen
    task_succeeded.disconnect(dispatch_uid="queue-successes")


def configure(settings: Any, server: ContractServer, alias: str, **extra: Any) -> None:
    settings.TAPESTRY_MEDIA = cloud_settings(
        server,
        TASK_BACKEND=alias,
        QUEUE_NAME=QUEUE,
        HTTP_RETRIES=0,  # every transient failure reaches the job's deferred retry
        READ_TIMEOUT=0.5,
        SUBMIT_BACKOFF_BASE=1.0,  # retries due ~1 s later: RQ's truncation really happens
        SUBMIT_BACKOFF_MAX=4.0,
        STALE_AFTER=int(STALE_AFTER.total_seconds()),
        **extra,
    )


def wait_for(condition: Callable[[], Any], seconds: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.output()[-4000:]}")
        time.sleep(0.05)
    raise AssertionError(
        f"timed out after {seconds}s waiting for {what}:\n{worker.output()[-4000:]}"
    )


# --- an early retry is never lost ---------------------------------------------------------------


def test_an_early_retry_is_enqueued_again_and_submitted(settings, server, workers, backend) -> None:
    name, chosen = backend
    configure(settings, server, chosen.alias)
    server.inject(Fault.unavailable(method="POST"))  # one more deferred retry, ~1 s
    worker = workers(chosen)
    worker.wait_until_ready()
    task = Task.objects.create(
        kind="video",
        input="https://tapestry-app.com/in/clip.mov",
        backend="ittybit",
        status=Status.CREATED,
        retries=1,
        next_attempt_at=timezone.now() + timedelta(seconds=1.5),
    )
    started = time.monotonic()
    assert enqueue_submit(task.pk, run_after=timezone.now()) is not None

    def submitted() -> bool:
        return Task.objects.filter(pk=task.pk, status=Status.PENDING).exists()

    wait_for(submitted, 30, "the task to be submitted", worker)
    took = time.monotonic() - started
    early = worker.early_arrivals()
    print(f"\n[{name}] early retry: submitted after {took:.1f}s; early arrivals {early}")
    assert early, f"no early arrival was logged; the worker said:\n{worker.output()[-4000:]}"
    assert {pk for pk, _ in early} == {task.pk}
    assert took < 30 < STALE_AFTER.total_seconds()  # without resync: it never ran here
    task.refresh_from_db()
    assert task.retries == 2  # the injected 503, retried once more
    assert server.tasks_created == 1
    assert server.count("POST") == 2


# --- the whole flow, with priorities ------------------------------------------------------------


def first_posts_in_order(server: ContractServer) -> list[tuple[str, str]]:
    """``(correlation key, priority)`` of each task's first create, in arrival order."""
    seen: dict[str, str] = {}
    for record in list(server.requests):
        if record.method == "POST" and record.json:
            metadata = record.json.get("metadata", {})
            seen.setdefault(metadata["tapestry_task"], metadata.get("priority", ""))
    return list(seen.items())


class Completer(threading.Thread):
    """The API's side of processing: each task the server created succeeds a moment later
    and its webhook is delivered (every third one twice)."""

    def __init__(self, server: ContractServer) -> None:
        super().__init__(name="completer", daemon=True)
        self.server = server
        self.done: set[str] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            for task_id in self.server.task_ids:
                if task_id not in self.done:
                    self.done.add(task_id)
                    if len(self.done) % 3 == 0:
                        self.server.inject_webhook("duplicate")
                    self.server.complete(task_id)


def test_uploads_become_ready_on_real_workers(
    settings, server, workers, backend, successes
) -> None:
    name, chosen = backend
    configure(settings, server, chosen.alias)
    uploads = 20  # two tasks each: video and poster
    rng = random.Random(1407)
    faults = [
        Fault.unavailable(method="POST"),
        Fault.created_then_error(500),
        Fault.reset_connection(method="POST"),
        Fault.rate_limited(retry_after=0, method="POST"),
        Fault.created_then_reset(),
    ]
    schedule = [faults[i % len(faults)] for i in range(12)]  # 30 % of the 40 first creates
    schedule += [Fault(method="POST") for _ in range(2 * uploads - len(schedule))]
    rng.shuffle(schedule)
    server.inject(*schedule)

    started = time.monotonic()
    for _ in range(uploads // 2):  # all queued before the worker starts: low ones first
        Submission.objects.create(file=video_upload(), metadata={"priority": "low"})
    for _ in range(uploads // 2):
        Submission.objects.create(file=video_upload(), metadata={"priority": "high"})
    assert Task.objects.filter(status=Status.CREATED).count() == 2 * uploads
    completer = Completer(server)
    completer.start()
    worker = workers(chosen)

    def all_ready() -> bool:
        return not Submission.objects.exclude(status="ready").exists()

    try:
        wait_for(all_ready, 120, "every submission to be ready", worker)
    finally:
        completer.stopping.set()
        completer.join(timeout=10)
    took = time.monotonic() - started

    tasks = list(Task.objects.order_by("pk"))
    order = first_posts_in_order(server)
    print(
        f"\n[{name}] {uploads} uploads, {len(tasks)} tasks ready in {took:.1f}s; "
        f"{server.count('POST')} creates, {server.tasks_created} remote tasks, "
        f"{sum(t.retries for t in tasks)} retries, {len(worker.early_arrivals())} early "
        f"arrivals, {server.webhooks_sent} webhooks sent; first-create order by priority: "
        f"{''.join(p[0].upper() for _, p in order)}"
    )
    # One remote task per local task, each created with its own key.
    assert Counter(t.status for t in tasks) == {Status.SUCCEEDED: 2 * uploads}
    assert server.tasks_created == len(tasks)
    assert len({t.remote_id for t in tasks}) == len(tasks)
    assert Counter(key for key, _ in order) == {str(t.uuid): 1 for t in tasks}
    # The failures really happened and were retried, and nothing was left for a resync.
    assert sum(t.retries for t in tasks) >= 12
    assert {503, 500, 429, None} <= {r.status for r in server.requests if r.method == "POST"}
    assert took < STALE_AFTER.total_seconds()
    # Duplicated webhooks changed nothing: one success per task, the repeats counted.
    assert successes == {t.pk: 1 for t in tasks}
    deliveries = sum(WebhookEvent.objects.values_list("delivery_count", flat=True))
    assert deliveries > WebhookEvent.objects.count() >= len(tasks)
    # Priorities: every high task reaches the server before any low one.
    priorities = [priority for _, priority in order]
    assert Counter(priorities) == {"high": uploads, "low": uploads}
    if chosen.supports_priority:
        assert priorities == ["high"] * uploads + ["low"] * uploads
    else:
        print(f"[{name}] the task backend has no priorities: they were not asked for")
