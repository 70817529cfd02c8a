"""Scale on the queues: submit throughput with 1, 2 and 4 worker processes per task backend
(django-tasks-db's ``db_worker``, RQ's ``rqworker --with-scheduler``, Celery's ``worker -c 1``;
django-tasks-redis's ``run_redis_tasks --continuous`` with ``--backends redis``, not a default),
each process one job in flight, against the contract server answering every create after
``--latency`` seconds, with ``--faults`` of the first creates failing transiently (503).

    scripts/bench-queues.sh [--uploads 200] [--workers 1 2 4] [--backends db rq celery]
                            [--latency 0.1] [--faults 0.0] [--worker-args ARGS] [--backlog]
                            [--conn-max-age 600] [--synchronous-commit on|off]
                            [--profile DIR [--profile-clock wall|cpu]]

Per run: the workers start and report ready; then the uploads are saved one by one (each save
queues its two submit jobs after commit). Reported per backend and worker count:

* tasks/s: tasks ÷ (last ``submitted_at`` - first upload's ``created_at``);
* the ratio to the physical limit, workers ÷ the median create latency the server measured
  (the time between a create's first byte in and its answer out, per the server's clock);
* p50/p99 upload-to-submitted (``submitted_at`` - the submission's ``created_at``);
* duplicates: remote tasks the server created beyond one per local task (must be 0);
* the CPU the worker processes used per task submitted since they were ready, and that of
  their PostgreSQL backends when they keep one connection (``--conn-max-age`` above 0);
* the overhead per task beyond the API: workers ÷ tasks/s minus the median create latency.

``--backlog`` saves every upload before the workers start and counts from the first submit to
the last: the workers' service rate alone. ``--profile DIR`` runs the first worker under
cProfile (bench/profiled.py); ``python -m bench.profile_summary DIR/db-1.prof`` splits a job's
time into its phases.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_QUEUES_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tapestry_bench_queues"
)


def setup() -> None:
    import django

    from . import harness

    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.queue_settings"
    harness.ensure_database(DATABASE_URL)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def timed_server() -> Any:
    from tapestry_media.testing.contract_server import ContractServer

    class TimedServer(ContractServer):
        """The contract server, timing each create from its first byte in to its answer."""

        create_seconds: list[float]

        def _handle(self, handler: Any, method: str) -> None:
            started = time.perf_counter()
            super()._handle(handler, method)
            if method == "POST":
                self.create_seconds.append(time.perf_counter() - started)

    server = TimedServer()
    server.create_seconds = []
    return server


def reset(backend: str) -> None:
    from django.db import connection

    from tests.queue_workers import empty_the_queue

    assert "bench" in connection.settings_dict["NAME"], "not a bench database"
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tapestry_media_webhookevent, tapestry_media_task, tapestry_media_submission,"
            " tapestry_media_localjob, django_tasks_database_dbtaskresult RESTART IDENTITY CASCADE"
        )
    empty_the_queue(backend)


def start_workers(
    backend: Any,
    count: int,
    tapestry: dict[str, Any],
    logs: Path,
    extra: list[str],
    profile: Path | None = None,
    clock: str = "wall",
) -> list[Any]:
    from tests.queue_settings import QUEUE

    from . import harness

    env = {
        **os.environ,
        "BENCH_TAPESTRY_MEDIA": json.dumps(tapestry),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",  # a worker's "ready" line reaches its log at once
    }
    processes = []
    for index in range(count):
        log = logs / f"{backend.alias}-{count}-{index}.log"
        # Celery workers on one host need names of their own (the last -n wins).
        name = ["-n", f"{QUEUE}-{index}@%h"] if "celery" in backend.command else []
        # The first worker under cProfile: where a job's time goes.
        profiler = (
            ["-m", "bench.profiled", "--clock", clock, "--out", str(profile)]
            if profile and index == 0
            else []
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, *profiler, *backend.command, *name, *extra],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        processes.append((process, log))
    deadline = time.monotonic() + 90
    while not all(backend.ready in log.read_text(errors="replace") for _, log in processes):
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in processes):
            for process, _ in processes:
                harness.stop(process)
            raise RuntimeError(f"workers did not start; see {logs}")
        time.sleep(0.1)
    return [process for process, _ in processes]


def one_run(name: str, count: int, args: argparse.Namespace, server: Any, logs: Path) -> dict:
    from django.test.utils import override_settings
    from django.utils import timezone

    from tapestry_media.models import Task
    from tapestry_media.testing.contract_server import Fault
    from tests.queue_settings import QUEUE
    from tests.queue_workers import BACKENDS, BENCH_ONLY

    from . import harness

    backend = {**BACKENDS, **BENCH_ONLY}[name]
    reset(name)
    tapestry = {
        "BACKEND": "ittybit",
        "API_KEY": server.api_key,
        "API_BASE_URL": server.url,
        "PUBLIC_BASE_URL": "https://tapestry-app.com",
        "WEBHOOK_SECRETS": ["bench-secret"],
        "TASK_BACKEND": backend.alias,
        "QUEUE_NAME": QUEUE,
        "HTTP_RETRIES": 0,
        "SUBMIT_BACKOFF_BASE": 1.0,
        "SUBMIT_BACKOFF_MAX": 4.0,
    }
    server.clear_faults()
    creates = 2 * args.uploads
    failing = round(creates * args.faults)
    delay = args.latency
    schedule = [Fault.unavailable(method="POST", delay=delay) for _ in range(failing)]
    schedule += [Fault.slow(delay, method="POST") for _ in range(creates - failing)]
    random.Random(14).shuffle(schedule)
    server.inject(*schedule, Fault.slow(delay, method="POST", times=None))  # then: retries
    server.create_seconds.clear()
    created_before = server.tasks_created

    profile = args.profile / f"{name}-{count}.prof" if args.profile else None
    with override_settings(TAPESTRY_MEDIA=tapestry):
        if args.backlog:  # every job queued before a worker starts: the service rate alone
            save_uploads(args.uploads)
        processes = start_workers(
            backend, count, tapestry, logs, args.worker_args.split(), profile, args.profile_clock
        )
        # CPU of the worker processes themselves (for Celery and RQ, with their children),
        # from the moment they are ready: per task submitted since then.
        pids = [p.pid for p in processes]
        cpu_before = sum(harness.cpu_seconds(pids + _children(pids)).values())
        # The workers' PostgreSQL backends, when they keep their connection (CONN_MAX_AGE).
        backends_before = harness.cpu_seconds(harness.database_backends())
        ready_at = timezone.now()
        try:
            if not args.backlog:
                save_uploads(args.uploads)
            harness.wait_until(
                lambda: not Task.objects.filter(status__in=["created", "submitting"]).exists(),
                900,
                "every task to be submitted",
                every=0.1,
            )
            cpu = sum(harness.cpu_seconds(pids + _children(pids)).values()) - cpu_before
            backends_after = harness.cpu_seconds(list(backends_before))
            database_cpu = sum(backends_after[pid] - backends_before[pid] for pid in backends_after)
        finally:
            for process in processes:
                harness.stop(process)
    rows = list(Task.objects.values_list("submitted_at", "submission__created_at"))
    waits = [(submitted - uploaded).total_seconds() for submitted, uploaded in rows]
    submitted = sorted(s for s, _ in rows)
    if args.backlog:
        # From the first submit to the last: tasks after the first ÷ the time they took.
        elapsed = (submitted[-1] - submitted[0]).total_seconds()
        rate = (len(rows) - 1) / elapsed
    else:
        elapsed = (submitted[-1] - min(u for _, u in rows)).total_seconds()
        rate = len(rows) / elapsed
    after_ready = sum(1 for s in submitted if s >= ready_at)
    latency = statistics.median(server.create_seconds)
    return {
        "backend": name,
        "workers": count,
        "tasks": len(rows),
        "tasks_per_s": rate,
        "create_latency_s": latency,
        "ratio_to_limit": rate / (count / latency),
        "p50_s": harness.percentile(waits, 50),
        "p99_s": harness.percentile(waits, 99),
        "duplicates": server.tasks_created - created_before - len(rows),
        "creates": len(server.create_seconds),
        "worker_cpu_ms_per_task": 1000 * cpu / max(after_ready, 1),
        "overhead_ms_per_task": 1000 * (count / rate - latency),
        # Only meaningful when the workers keep their connection (a backend per job otherwise).
        "database_cpu_ms_per_task": (
            1000 * database_cpu / max(after_ready, 1)
            if args.conn_max_age and backends_before
            else None
        ),
        "backlog": args.backlog,
        "conn_max_age": args.conn_max_age,
        "synchronous_commit": args.synchronous_commit or "server default",
    }


def save_uploads(count: int) -> None:
    """``count`` uploads, one by one; each save queues its two submit jobs after commit."""
    from django.core.files.base import ContentFile

    from tapestry_media.models import Submission

    for index in range(count):
        Submission.objects.create(file=ContentFile(b"\x00" * 64, name=f"b{index}.mp4"))


def _children(pids: list[int]) -> list[int]:
    from . import harness

    return [child for pid in pids for child in harness.children(pid)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200, help="uploads per run (2 tasks each)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backends", nargs="+", default=["db", "rq", "celery"])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per create")
    parser.add_argument("--faults", type=float, default=0.0, help="share of creates failing")
    parser.add_argument(
        "--worker-args",
        default="",
        help="more arguments for every worker, e.g. '--worker-class rq.worker.SimpleWorker'",
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="save every upload before the workers start; tasks/s from the first submit to "
        "the last (the service rate, without the uploads competing for the CPU)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the first worker of each run under cProfile, writing DIR/<backend>-<n>.prof",
    )
    parser.add_argument("--profile-clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=600,
        help="CONN_MAX_AGE of every process (0: a new database connection per job)",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        help="PostgreSQL's synchronous_commit for every connection (default: the server's)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    # Read by bench/queue_settings.py, here and in every worker (they inherit the environment).
    os.environ["BENCH_CONN_MAX_AGE"] = str(args.conn_max_age)
    if args.synchronous_commit:
        os.environ["BENCH_SYNCHRONOUS_COMMIT"] = args.synchronous_commit
    setup()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"tapestry-bench-queues-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    server = timed_server().start()
    try:
        for name in args.backends:
            for count in args.workers:
                result = one_run(name, count, args, server, logs)
                results.append(result)
                print(
                    f"  {name:6} {count} worker(s): {result['tasks_per_s']:6.1f} tasks/s "
                    f"({result['ratio_to_limit']:.0%} of {count}/"
                    f"{result['create_latency_s'] * 1000:.0f} ms), upload→submitted p50 "
                    f"{result['p50_s']:.2f} s p99 {result['p99_s']:.2f} s, "
                    f"{result['duplicates']} duplicates, {result['creates']} creates, "
                    f"worker CPU {result['worker_cpu_ms_per_task']:.1f} ms/task"
                    + (
                        f" + PostgreSQL {result['database_cpu_ms_per_task']:.1f} ms/task"
                        if result["database_cpu_ms_per_task"] is not None
                        else ""
                    )
                    + ", overhead "
                    f"{result['overhead_ms_per_task']:.0f} ms/task beyond the API",
                    flush=True,
                )
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
