"""Chaos scenarios at large N with real processes (small N: tests/test_scenarios.py).

    python -m bench.scenarios [--submissions 200] [--rate 0.3] [--local-jobs 6]

**Cloud**: ``--submissions`` uploads (two tasks each) through the app's receivers; two ``db_worker``
processes submit them to the contract server while ``--rate`` of the creates fail transiently
("created, then 500", "created, then reset", created then a read timeout, 503, 429, a reset);
one worker is SIGKILLed mid-run and replaced. Then every task is completed server-side and its
webhook goes over HTTP to the site under gunicorn — 20 % duplicated, 10 % dropped, 10 % held and
released in reverse order — and ``manage.py tapestry_media resync`` recovers what was lost.
Checked on the server side: one remote task per attempt (contract server), every task
``succeeded``, every submission ``ready``, one event row per delivered event with its exact
delivery count, nothing left for a second resync.

**Local engine**: ``--local-jobs`` videos on the local engine with two workers; one is SIGKILLed
while ffmpeg runs; after its lease expires, resync and the surviving worker finish the job.
Checked: every task ``succeeded`` with one output, the killed job ran exactly twice, the others
once, one ``succeeded`` event per task.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import harness

TRANSIENT = (
    "created_then_500",
    "created_then_reset",
    "created_then_timeout",
    "503",
    "429",
    "reset",
)


def fault(kind: str) -> Any:
    from tapestry_media.testing.contract_server import Fault

    return {
        "created_then_500": lambda: Fault.created_then_error(500),
        "created_then_reset": Fault.created_then_reset,
        "created_then_timeout": lambda: Fault.created_then_slow(1.5),  # READ_TIMEOUT 0.5 s
        "503": lambda: Fault.unavailable(method="POST"),
        "429": lambda: Fault.rate_limited(retry_after=0, method="POST"),
        "reset": lambda: Fault.reset_connection(method="POST"),
    }[kind]()


def resync_command(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(harness.EXAMPLE / "manage.py"), "tapestry_media", "resync",
         "--stale-after", "0s"],
        env=harness.environment(**env), cwd=harness.ROOT, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def queue_ready() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'READY'"
        )
        return int(cursor.fetchone()[0])


def queue_idle() -> bool:
    """No job waiting and none running but the killed worker's orphan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'READY'),"
            " count(*) FILTER (WHERE status = 'RUNNING' AND NOT worker_ids @> '[\"victim\"]')"
            " FROM django_tasks_database_dbtaskresult"
        )
        ready, running = cursor.fetchone()
    return ready == 0 and running == 0


def kill_inside_a_create(victim: subprocess.Popen[bytes], seconds: float = 120) -> int:
    """SIGKILL ``victim`` while it is inside a submit job whose task is ``submitting`` (the
    create call is in flight). The worker is stopped (SIGSTOP) while we look, so what we see is
    what it dies with. Returns the task's pk."""
    from django_tasks_db.models import DBTaskResult

    from tapestry_media.models import Task

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        os.kill(victim.pid, signal.SIGSTOP)
        running = DBTaskResult.objects.filter(status="RUNNING").values_list(
            "worker_ids", "args_kwargs"
        )
        mine = [args["args"][0] for ids, args in running if ids and ids[-1] == "victim"]
        if mine and Task.objects.filter(pk=mine[0], status="submitting").exists():
            harness.stop(victim, kill=True)
            return int(mine[0])
        os.kill(victim.pid, signal.SIGCONT)
        time.sleep(0.002)
    raise TimeoutError("the victim worker was never caught inside a create call")


def cloud(*, submissions: int = 200, rate: float = 0.3, seed: int = 11, say: Any = print) -> dict:
    from django.core.files.base import ContentFile
    from django.db.models import Sum
    from django.test import override_settings

    from tapestry_media.models import Submission, Task, WebhookEvent
    from tapestry_media.testing.contract_server import ContractServer, Fault

    harness.reset_tables()
    rng = random.Random(seed)
    problems: list[str] = []
    tasks_total = 2 * submissions
    schedule_kinds = [TRANSIENT[i % len(TRANSIENT)] for i in range(round(tasks_total * rate))]
    schedule = [fault(kind) for kind in schedule_kinds]
    schedule += [Fault(method="POST") for _ in range(tasks_total - len(schedule))]
    rng.shuffle(schedule)
    started = time.monotonic()

    with (
        harness.gunicorn() as site,
        ContractServer(
            webhook_url=f"http://127.0.0.1:{site.port}{harness.WEBHOOK_PATH}",
            webhook_secret=harness.SECRET,
        ) as server,
    ):
        config = {
            "BACKEND": "ittybit",
            "API_KEY": server.api_key,
            "API_BASE_URL": server.url,
            "WEBHOOK_SECRETS": [harness.SECRET],
            "PUBLIC_BASE_URL": "https://tapestry-app.com",
            "HTTP_RETRIES": 1,
            "HTTP_BACKOFF_FACTOR": 0.01,
            "HTTP_BACKOFF_MAX": 0.05,
            "SUBMIT_BACKOFF_BASE": 0.05,
            "SUBMIT_BACKOFF_MAX": 0.5,
            "READ_TIMEOUT": 0.5,
        }
        env = {"BENCH_TAPESTRY_MEDIA": json.dumps(config)}
        server.inject(*schedule)
        workers = harness.start_workers(2, ids=["victim", "survivor"], **env)
        try:
            with override_settings(TAPESTRY_MEDIA=config):
                for index in range(submissions):  # each commits: two submit jobs are queued
                    Submission.objects.create(
                        file=ContentFile(b"\x00\x00\x00\x18ftypmp42", name=f"clip{index}.mp4")
                    )
            # Kill one worker mid-run: it is inside a submit job most of the time.
            harness.wait_until(
                lambda: Task.objects.filter(status="pending").count() >= tasks_total // 3,
                300, "a third of the submits",
            )  # fmt: skip
            victim_task = kill_inside_a_create(workers[0])
            killed_in = Counter(Task.objects.values_list("status", flat=True))
            workers[0] = harness.start_workers(1, **env)[0]
            harness.wait_until(
                lambda: not Task.objects.filter(status="created").exists() and not queue_ready(),
                300, "the queue to drain",
            )  # fmt: skip
            stuck = list(Task.objects.exclude(status="pending").values_list("pk", flat=True))
            if stuck != [victim_task]:
                problems.append(f"left stuck by the kill: {stuck}, expected [{victim_task}]")
            first_resync = resync_command(env)
            harness.wait_until(
                lambda: not Task.objects.exclude(status="pending").exists() and queue_idle(),
                300,
                "every submit, and the resync's jobs",
            )

            # The server's view: one remote task per attempt, each key bound to one task.
            keyed: dict[str, set[str]] = defaultdict(set)
            for record in server.requests:
                if record.method == "POST" and record.task_id:
                    keyed[record.header("Idempotency-Key") or ""].add(record.task_id)
            local = dict(Task.objects.values_list("uuid", "remote_id"))
            if server.tasks_created != tasks_total:
                problems.append(f"{server.tasks_created} remote tasks for {tasks_total}")
            if any(len(ids) != 1 for ids in keyed.values()):
                problems.append("an idempotency key made two remote tasks")
            by_key = {key: ids.pop() for key, ids in keyed.items() if len(ids) == 1}
            expected = {f"{uid.hex[:24]}-1": rid for uid, rid in local.items()}
            if by_key != expected:
                problems.append("remote ids do not match the tasks' keys")
            posts = [r for r in server.requests if r.method == "POST"]

            # Results, with duplicated, dropped and held (reordered) webhooks.
            remote_ids = list(Task.objects.values_list("remote_id", flat=True))
            for remote_id in remote_ids:
                roll = rng.random()
                if roll < 0.4:
                    server.inject_webhook(
                        "duplicate" if roll < 0.2 else "drop" if roll < 0.3 else "hold"
                    )
                server.complete(remote_id, deliver=False)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(server.send_webhook, remote_ids))
            server.release_held(reverse=True)
            dropped = sum(1 for d in server.deliveries if d.state == "dropped")
            harness.wait_until(queue_idle, 60, "the queue to be idle")
            waiting = Task.objects.filter(status="pending").count()
            if waiting != dropped:
                problems.append(f"{waiting} tasks wait for a result, {dropped} were dropped")
            second_resync = resync_command(env)
            if f"{dropped} polled, 0 resubmitted" not in second_resync:
                problems.append(f"the second resync should poll the {dropped}: {second_resync}")
            harness.wait_until(
                lambda: not Task.objects.exclude(status="succeeded").exists(), 300, "every result"
            )
            third_resync = resync_command(env)
        finally:
            for process in workers:
                harness.stop(process)
        delivered = [d for d in server.deliveries if d.state == "delivered"]
        answers = Counter(d.status_code for d in delivered)
        if answers != {200: len(delivered)} or any(d.state == "failed" for d in server.deliveries):
            problems.append(f"webhook answers {dict(answers)}")
        events = WebhookEvent.objects.count()
        if events != len({d.event_id for d in delivered}):
            problems.append(f"{events} event rows for {len({d.event_id for d in delivered})}")
        counted = WebhookEvent.objects.aggregate(total=Sum("delivery_count"))["total"]
        if counted != len(delivered):
            problems.append(f"{counted} deliveries counted for {len(delivered)} made")
        if set(Submission.objects.values_list("status", flat=True)) != {"ready"}:
            problems.append("a submission is not ready")
        if "0 polled, 0 resubmitted" not in third_resync:
            problems.append(f"a third resync still found work: {third_resync}")
        if server.errors:
            problems.append(f"contract server errors: {server.errors[:3]}")
        failed_posts = Counter(r.status for r in posts if r.status not in (200, 201))
        return {
            "tasks": tasks_total,
            "creates": len(posts),
            "failed_creates": sum(failed_posts.values()),
            "failed_by_status": dict(failed_posts),
            "replayed": sum(1 for r in posts if r.status == 200),
            "remote_tasks": server.tasks_created,
            "at_kill": dict(killed_in),
            "killed_inside_create_of_task": victim_task,
            "stuck_after_kill": len(stuck),
            "resyncs": [first_resync, second_resync, third_resync],
            "webhooks": len(server.deliveries),
            "dropped": dropped,
            "delivered": len(delivered),
            "event_rows": events,
            "seconds": time.monotonic() - started,
            "problems": problems,
        }


def local(*, jobs: int = 6, say: Any = print) -> dict:
    from django.core.files.storage import default_storage
    from django.test import override_settings

    import tapestry_media
    from tapestry_media.local.engine import find_ffmpeg
    from tapestry_media.models import LocalJob, Task, WebhookEvent

    harness.reset_tables()
    problems: list[str] = []
    clip = harness.MEDIA_ROOT / "bench-clip.mp4"
    subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine",
         "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(clip)],
        check=True, timeout=120,
    )  # fmt: skip
    config = {"BACKEND": "local", "WEBHOOK_SECRETS": [harness.SECRET], "LOCAL_LEASE_SECONDS": 2}
    env = {"BENCH_TAPESTRY_MEDIA": json.dumps(config)}
    started = time.monotonic()
    with override_settings(TAPESTRY_MEDIA=config):
        names = []
        for index in range(jobs):
            with clip.open("rb") as handle:
                names.append(default_storage.save(f"bench/local-{index}.mp4", handle))
        workers = harness.start_workers(2, **env)
        try:
            tasks = [
                tapestry_media.submit(input=name, kind="video", options={"width": 640})
                for name in names
            ]
            victim = workers[0]
            ffmpeg = harness.wait_until(
                lambda: [
                    pid for pid in harness.children(victim.pid) if "ffmpeg" in _comm(pid)
                ], 120, "ffmpeg under the first worker",
            )  # fmt: skip
            running = list(LocalJob.objects.filter(state="processing").values_list("pk", "runs"))
            harness.stop(victim, kill=True)
            time.sleep(2.5)  # the lease runs out
            resync = resync_command(env)
            harness.wait_until(
                lambda: not Task.objects.exclude(status__in=("succeeded", "failed")).exists(),
                600, "every local job",
            )  # fmt: skip
        finally:
            for process in workers:
                harness.stop(process)
    states = Counter(
        Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("status", flat=True)
    )
    if states != {"succeeded": jobs}:
        problems.append(f"task states {dict(states)}")
    runs = Counter(LocalJob.objects.values_list("runs", flat=True))
    reruns = sum(n for r, n in runs.items() if r == 2)
    if LocalJob.objects.count() != jobs or set(runs) - {1, 2} or reruns < 1:
        problems.append(f"local job runs {dict(runs)}")
    successes = Counter(
        WebhookEvent.objects.filter(raw_status="succeeded").values_list("task_id", flat=True)
    )
    if successes != {t.pk: 1 for t in tasks}:
        problems.append(f"succeeded events per task {dict(successes)}")
    for job in LocalJob.objects.all():
        outputs = default_storage.listdir(f"tapestry_media/outputs/{job.remote_id}")[1]
        if len(outputs) != 1:
            problems.append(f"{job.remote_id} has {len(outputs)} outputs")
    return {
        "jobs": jobs,
        "killed_with_ffmpeg": len(ffmpeg),
        "processing_at_kill": running,
        "runs": dict(runs),
        "resync": resync,
        "seconds": time.monotonic() - started,
        "problems": problems,
    }


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--local-jobs", type=int, default=6)
    args = parser.parse_args()
    harness.prepare()
    failed = False
    for name, result in (
        ("cloud", cloud(submissions=args.submissions, rate=args.rate)),
        ("local", local(jobs=args.local_jobs)),
    ):
        print(f"{name}: " + json.dumps({k: v for k, v in result.items() if k != "problems"}))
        print("  OK" if not result["problems"] else "  PROBLEMS: " + "; ".join(result["problems"]))
        failed |= bool(result["problems"])
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
