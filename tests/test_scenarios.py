"""Chaos scenarios, small N (the large-N runs are ``bench/scenarios.py``).

* Submissions against the contract server with the real IttybitBackend while 30 % of the creates
  fail transiently ("created, then 500", "created, then reset", a read timeout after the task
  was created, 503, 429, a reset before anything), submit jobs get lost, webhooks are dropped,
  duplicated and reordered: every task ends succeeded exactly once, the server created exactly
  one task per attempt, and nothing is left for a later resync.
* A ``db_worker`` killed with SIGKILL in the middle of a job, on the cloud backend (inside the
  create call) and on the local engine (while ffmpeg runs): resync and a new worker finish the
  work, once. These share the database between processes, so they run on PostgreSQL.

Every count is taken on the server side: the contract server's records, the database's rows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

import tapestry_media
from tapestry_media import resync
from tapestry_media.models import LocalJob, Submission, Task, WebhookEvent
from tapestry_media.signals import task_succeeded
from tapestry_media.status import Status
from tapestry_media.tasks_shim import task_backends
from tapestry_media.testing.contract_server import (
    ContractServer,
    Fault,
)
from tapestry_media.testing.jobs import enqueued, run_jobs

from .helpers import cloud_settings, video_upload

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parent.parent

#: One maker per kind of transient create failure. All match POSTs only: polls are not faulted.
TRANSIENT: dict[str, Callable[[], Fault]] = {
    "created_then_500": lambda: Fault.created_then_error(500),
    "created_then_reset": lambda: Fault.created_then_reset(),
    "created_then_timeout": lambda: Fault.created_then_slow(0.6),  # READ_TIMEOUT is 0.25 s
    "503": lambda: Fault.unavailable(method="POST"),
    "429": lambda: Fault.rate_limited(retry_after=0, method="POST"),
    "reset": lambda: Fault.reset_connection(method="POST"),
}


def fault_schedule(creates: int, rate: float, rng: random.Random) -> list[Fault]:
    """Faults for the next ``creates`` POSTs: ``rate`` of them transient failures (every kind
    at least once), the rest pass-through faults that let the request carry on."""
    failing = max(len(TRANSIENT), round(creates * rate))
    kinds = list(TRANSIENT)
    chosen = [kinds[i % len(kinds)] for i in range(failing)]
    schedule = [TRANSIENT[kind]() for kind in chosen]
    schedule += [Fault(method="POST") for _ in range(creates - failing)]
    rng.shuffle(schedule)
    return schedule


@pytest.fixture
def cloud(cloud: ContractServer, settings) -> ContractServer:
    """The shared ``cloud``, with quick retries and a short read timeout."""
    settings.TAPESTRY_MEDIA = cloud_settings(
        cloud,
        HTTP_RETRIES=1,  # one quick retry; two failures in a row reach the job's retry
        HTTP_BACKOFF_FACTOR=0.001,
        HTTP_BACKOFF_MAX=0.01,
        SUBMIT_BACKOFF_BASE=0.001,
        SUBMIT_BACKOFF_MAX=0.01,
        READ_TIMEOUT=0.25,
    )
    return cloud


@pytest.fixture
def successes() -> Iterator[Counter[int]]:
    """How many ``task_succeeded`` signals each task got (sent after commit)."""
    seen: Counter[int] = Counter()

    def count(sender: Any, task: Task, **kwargs: Any) -> None:
        seen[task.pk] += 1

    task_succeeded.connect(count, weak=False, dispatch_uid="scenario-successes")
    yield seen
    task_succeeded.disconnect(dispatch_uid="scenario-successes")


def drain_jobs(seconds: float = 30) -> int:
    """Run queued jobs as a worker would, waiting for deferred retries to fall due."""
    ran = 0
    deadline = time.monotonic() + seconds
    while enqueued():
        ran += len(run_jobs())
        assert time.monotonic() < deadline, f"jobs still queued after {seconds}s: {enqueued()}"
        time.sleep(0.005)
    return ran


def lose_submit_jobs(count: int) -> list[int]:
    """Forget the queued submit jobs of ``count`` tasks, as a crash after commit would."""
    backend = task_backends["default"]
    lost = [r for r in enqueued() if r.task.name.endswith("submit_task")][:count]
    for result in lost:
        backend.results.remove(result)
    return [result.args[0] for result in lost]


def posts_by_key(server: ContractServer) -> dict[str, set[str]]:
    """Idempotency key → the server task ids every POST with that key touched."""
    keyed: dict[str, set[str]] = defaultdict(set)
    for record in server.requests:
        if record.method == "POST":
            key = record.header("Idempotency-Key")
            assert key, "a create without an Idempotency-Key"
            if record.task_id:
                keyed[key].add(record.task_id)
    return keyed


# --- transient create failures ------------------------------------------------------------------


def test_transient_create_failures_lose_and_duplicate_nothing(cloud, successes) -> None:
    rng = random.Random(20240607)
    submissions = 10  # two tasks each: video and poster
    schedule = fault_schedule(creates=2 * submissions, rate=0.3, rng=rng)
    failing = sum(1 for fault in schedule if fault.status or fault.reset or fault.delay)
    assert failing == 6
    cloud.inject(*schedule)

    for _ in range(submissions):
        Submission.objects.create(file=video_upload())  # commits: submit jobs are enqueued
    lost = lose_submit_jobs(2)
    drain_jobs()

    tasks = list(Task.objects.order_by("pk"))
    assert len(tasks) == 2 * submissions
    stuck = {t.pk for t in tasks if t.status == Status.CREATED}
    assert stuck == set(lost), "only the tasks whose submit job was lost may still wait"
    report = resync.run(stale_after=timedelta(0), wait=True)
    assert sorted(report.resubmitted) == sorted(lost)
    drain_jobs()  # retries of the resubmitted creates, if those failed too

    # The server's view: one created task per attempt, each key bound to one task.
    tasks = list(Task.objects.order_by("pk"))
    assert all(t.status == Status.PENDING and t.attempt == 1 for t in tasks), Counter(
        t.status for t in tasks
    )
    keyed = posts_by_key(cloud)
    assert cloud.tasks_created == len(tasks)
    assert all(len(ids) == 1 for ids in keyed.values()), keyed
    assert {k: ids.pop() for k, ids in keyed.items()} == {
        t.idempotency_key: t.remote_id for t in tasks
    }
    posts = [r for r in cloud.requests if r.method == "POST"]
    assert len(posts) >= len(tasks) + failing, "each transient failure costs one more create"
    assert {500, 503, 429, None} <= {r.status for r in posts}
    assert cloud.count("POST", status=200) >= 1, "no create was replayed by its key"

    # Results: duplicated, dropped and reordered deliveries, late "processing" reports.
    late: list[Any] = []
    for task in tasks:
        assert task.remote_id
        if rng.random() < 0.3:
            cloud.set_status(task.remote_id, "processing", progress=40)
            late.append(cloud.deliveries[-1])
        roll = rng.random()
        if roll < 0.8:
            cloud.inject_webhook("duplicate" if roll < 0.5 else "drop" if roll < 0.65 else "hold")
        cloud.complete(task.remote_id)
    cloud.release_held(reverse=True)
    for delivery in late:
        cloud.redeliver(delivery)  # a "processing" arriving after "succeeded"
    dropped = [d for d in cloud.deliveries if d.state == "dropped"]
    assert dropped, "no webhook was dropped: resync had nothing to recover"
    assert Task.objects.filter(status=Status.PENDING).count() == len(dropped)

    report = resync.run(stale_after=timedelta(0), wait=True)
    assert sorted(report.polled) == sorted(
        t.pk for t in tasks if t.remote_id in {d.task_id for d in dropped}
    )

    # Every task succeeded exactly once; nothing is left for a later resync.
    assert Counter(Task.objects.values_list("status", flat=True)) == {Status.SUCCEEDED: len(tasks)}
    assert successes == {t.pk: 1 for t in tasks}
    assert set(Submission.objects.values_list("status", flat=True)) == {"ready"}
    assert resync.run(stale_after=timedelta(0), wait=True).total == 0
    assert cloud.tasks_created == len(tasks)

    # Each delivered event is one row; its repeats are counted on it, none lost.
    delivered = [d for d in cloud.deliveries if d.state == "delivered"]
    assert {d.status_code for d in delivered} == {200}
    webhook_events = WebhookEvent.objects.filter(source=WebhookEvent.Source.WEBHOOK)
    assert webhook_events.count() == len({d.event_id for d in delivered})
    assert sum(webhook_events.values_list("delivery_count", flat=True)) == len(delivered)
    assert WebhookEvent.objects.filter(task__isnull=True).count() == 0
    # Each polled state is kept as an event too, on the task it was polled for.
    polled = WebhookEvent.objects.filter(source=WebhookEvent.Source.POLL)
    assert set(report.polled) <= set(polled.values_list("task_id", flat=True))


# --- sibling results at the same moment (PostgreSQL: real row locks) --------------------------


@pytest.mark.postgres
def test_sibling_results_at_once_leave_every_submission_ready() -> None:
    """Both tasks of a submission succeed in two concurrent requests: the submission must end
    ``ready`` with one ``submission_processed``, not stay ``processing`` because each request
    read the other's task as unfinished."""
    from tapestry_media.signals import submission_processed
    from tapestry_media.testing.webhooks import build_webhook, post_webhook

    processed: Counter[int] = Counter()

    def count(sender: Any, submission: Submission, **kwargs: Any) -> None:
        processed[submission.pk] += 1

    submission_processed.connect(count, weak=False, dispatch_uid="scenario-processed")
    submissions = []
    try:
        for index in range(20):
            submission = Submission.objects.create(file=video_upload())
            tasks = list(submission.tasks.all())
            for i, task in enumerate(tasks):
                Task.objects.filter(pk=task.pk).update(
                    status=Status.PENDING, remote_id=f"task_sibling_{index}_{i}"
                )
                task.refresh_from_db()
            barrier = threading.Barrier(len(tasks))
            answers: list[int] = []

            def deliver(task: Task, barrier: Any = barrier, answers: Any = answers) -> None:
                webhook = build_webhook(task, "succeeded")
                try:
                    barrier.wait(timeout=10)
                    answers.append(post_webhook(Client(), webhook).status_code)
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=deliver, args=(task,)) for task in tasks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert answers == [200, 200]
            submissions.append(submission.pk)
    finally:
        submission_processed.disconnect(dispatch_uid="scenario-processed")
    statuses = Counter(Submission.objects.values_list("status", flat=True))
    assert statuses == {"ready": len(submissions)}
    assert processed == {pk: 1 for pk in submissions}


# --- a worker killed with SIGKILL mid-job (PostgreSQL: the database is shared) ------------------

WORKER_SETTINGS = """\
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]  # noqa: F405
TASKS = {{"default": {{"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}}}
DATABASES["default"]["NAME"] = {name!r}  # noqa: F405
MEDIA_ROOT = {media!r}
TAPESTRY_MEDIA = {tapestry!r}
"""

WORKER = """\
import django

django.setup()
from django.core.management import call_command
from tapestry_media import enqueue

for pk in {enqueue!r}:
    enqueue.enqueue_submit(pk)
if {resync!r}:
    call_command("tapestry_media", "resync", "--stale-after", "0s")
call_command(
    "db_worker", "--no-startup-delay", "--no-reload", "--interval", "0.05", "--verbosity", "0",
    *{args!r},
)
"""


class Workers:
    """``db_worker`` processes on the test database (django-tasks-db), with this test's
    ``TAPESTRY_MEDIA``; each in its own process group, so SIGKILL takes ffmpeg with it."""

    def __init__(self, root: Path, settings: Any) -> None:
        self.root = root
        self.settings = settings
        self.started: list[subprocess.Popen[bytes]] = []

    def environment(self) -> dict[str, str]:
        module = self.root / "scenario_worker_settings.py"
        module.write_text(
            WORKER_SETTINGS.format(
                name=connection.settings_dict["NAME"],
                media=str(self.settings.MEDIA_ROOT),
                tapestry=dict(self.settings.TAPESTRY_MEDIA),
            )
        )
        (self.root / "tmp").mkdir(exist_ok=True)
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "scenario_worker_settings",
            "PYTHONPATH": os.pathsep.join([str(self.root), str(REPO)]),
            "TMPDIR": str(self.root / "tmp"),  # a killed run's work directory stays in here
        }

    def start(
        self, *, enqueue: tuple[int, ...] = (), resync: bool = False, batch: bool = False
    ) -> Any:
        code = WORKER.format(
            enqueue=list(enqueue), resync=resync, args=["--batch"] if batch else []
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            env=self.environment(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def run(self, **options: Any) -> str:
        """A worker that resyncs and/or drains the queue, then exits."""
        process = self.start(batch=True, **options)
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, out.decode()
        return out.decode()

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture(scope="module")
def task_queue_table(django_db_setup, django_db_blocker) -> None:
    """The django-tasks-db table in the test database (tests/settings.py does not install
    the app: its own tests record jobs with the DummyBackend)."""
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    code = textwrap.dedent(f"""
        from django.conf import settings
        import django
        settings.DATABASES["default"]["NAME"] = {name!r}
        settings.INSTALLED_APPS.append("django_tasks_db")
        django.setup()
        from django.core.management import call_command
        call_command("migrate", "django_tasks_database", verbosity=0)
    """)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=60)


@pytest.fixture
def workers(task_queue_table, tmp_path, settings) -> Iterator[Workers]:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_tasks_database_dbtaskresult")
    pool = Workers(tmp_path, settings)
    yield pool
    pool.stop_all()


def queue_statuses() -> Counter[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM django_tasks_database_dbtaskresult")
        return Counter(row[0] for row in cursor.fetchall())


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def children_named(pid: int, name: str) -> list[int]:
    """Processes whose parent is ``pid`` and whose command name contains ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid and name in comm:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.postgres
def test_worker_killed_inside_the_create_call(cloud, settings, workers, successes) -> None:
    settings.TAPESTRY_MEDIA = cloud_settings(cloud, HTTP_RETRIES=0, READ_TIMEOUT=60)
    # The API creates the task, then takes its time to answer: the worker dies waiting.
    cloud.inject(Fault.created_then_slow(30))
    task = tapestry_media.submit(
        input="https://tapestry-app.com/in/clip.mov",
        kind="video",
        options={"width": 1280, "format": "mp4"},
        metadata={"user_id": "usr_1", "submission_id": "sub_kill"},
    )

    worker = workers.start(enqueue=(task.pk,))
    wait_for(lambda: cloud.tasks_created == 1, 30, "the create call")
    task.refresh_from_db()
    assert (task.status, task.remote_id) == (Status.SUBMITTING, None)
    Workers.kill(worker)
    assert queue_statuses() == {"RUNNING": 1}  # django-tasks-db never finishes it

    out = workers.run(resync=True)
    assert "1 resubmitted" in out

    task.refresh_from_db()
    remote_id = cloud.task_ids[0]
    assert (task.status, task.remote_id) == (Status.PENDING, remote_id)
    creates = [r for r in cloud.requests if r.method == "POST"]
    assert [r.status for r in creates] == [None, 200]  # killed, then replayed by its key
    assert len({r.header("Idempotency-Key") for r in creates}) == 1
    assert cloud.tasks_created == 1

    cloud.complete(remote_id)
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert successes == {task.pk: 1}
    assert WebhookEvent.objects.filter(task=task).count() == 1
    assert queue_statuses() == {"RUNNING": 1, "SUCCESSFUL": 1}


@pytest.fixture
def clip(settings, tmp_path) -> str:
    """A 640x360 clip in the default storage; the engine needs about a second for it."""
    from tapestry_media.local.engine import find_ffmpeg

    path = tmp_path / "clip.mp4"
    subprocess.run(
        [
            find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    with path.open("rb") as handle:
        return default_storage.save("uploads/clip.mp4", handle)


@pytest.mark.postgres
def test_worker_killed_while_ffmpeg_runs(settings, workers, clip) -> None:
    settings.TAPESTRY_MEDIA = {
        "BACKEND": "local",
        "WEBHOOK_SECRETS": list(settings.TAPESTRY_MEDIA["WEBHOOK_SECRETS"]),
        "LOCAL_LEASE_SECONDS": 1,  # a dead worker's job is free to run again after a second
    }
    task = tapestry_media.submit(
        input=clip, kind="video", options={"width": 640, "format": "mp4"}, metadata={}
    )

    worker = workers.start(enqueue=(task.pk,))
    ffmpeg = wait_for(lambda: children_named(worker.pid, "ffmpeg"), 30, "ffmpeg to start")
    Workers.kill(worker)
    wait_for(lambda: not any(map(running, ffmpeg)), 5, "ffmpeg to die with its worker")
    job = LocalJob.objects.get()
    assert (job.state, job.runs) == (LocalJob.State.PROCESSING, 1)
    assert queue_statuses()["RUNNING"] == 1
    wait_for(lambda: LocalJob.objects.get().lease_expires_at < timezone.now(), 5, "the lease")

    out = workers.run(resync=True)  # resync polls the task; the expired lease re-runs the job
    assert "1 polled" in out

    task.refresh_from_db()
    job.refresh_from_db()
    assert task.status == Status.SUCCEEDED, (task.status, task.error)
    assert (job.state, job.runs) == (LocalJob.State.SUCCEEDED, 2)
    assert LocalJob.objects.count() == 1
    successes = WebhookEvent.objects.filter(task=task, raw_status="succeeded")
    assert successes.count() == 1
    assert successes.get().delivery_count == 1
    assert default_storage.exists(task.output["storage_name"])
    outputs = default_storage.listdir(f"tapestry_media/outputs/{job.remote_id}")[1]
    assert len(outputs) == 1, outputs
