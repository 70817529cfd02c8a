"""Submit throughput: tasks/s from ``created`` to ``pending`` through ``db_worker`` processes
(django-tasks-db on PostgreSQL) and the real IttybitBackend against the contract server.

    python -m bench.submit [--tasks 300] [--rounds 3] [--workers 1 2] [--latency 0]

The workers start first and idle; then one transaction enqueues a submit job per task, and the
clock runs from its commit until every task is ``pending`` with a remote id. ``--latency`` adds
that many seconds to every API answer (the contract server answers in well under a millisecond,
the real API does not). Runs with 1 and 2 workers alternate; medians and spread are reported.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from . import harness


def one_run(server: Any, workers: int, tasks: int, prefix: str) -> float:
    from django.db import transaction

    from tapestry_media import enqueue
    from tapestry_media.models import Task

    harness.reset_tables()
    created_before = server.tasks_created
    rows = harness.seed_tasks(tasks, prefix=prefix, remote_ids=False)
    Task.objects.filter(pk__in=[t.pk for t in rows]).update(status="created")
    env = {
        "TAPESTRY_MEDIA_BACKEND": "ittybit",
        "ITTYBIT_API_KEY": server.api_key,
        "ITTYBIT_API_URL": server.url,
        "PUBLIC_BASE_URL": "https://tapestry-app.com",
        "BENCH_TAPESTRY_MEDIA": json.dumps({"HTTP_RETRIES": 0}),
    }
    processes = harness.start_workers(workers, **env)
    try:
        time.sleep(2.0)  # the workers are up and polling
        with transaction.atomic():
            for task in rows:
                enqueue.enqueue_submit(task.pk)
        started = time.perf_counter()
        harness.wait_until(
            lambda: not Task.objects.exclude(status="pending").exists(),
            300,
            "every task to be submitted",
            every=0.01,
        )
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            harness.stop(process)
    pending = Task.objects.filter(status="pending", remote_id__isnull=False).count()
    if pending != tasks or server.tasks_created - created_before != tasks:
        raise AssertionError(
            f"{pending} of {tasks} pending; the server created "
            f"{server.tasks_created - created_before}"
        )
    return tasks / elapsed


def run(
    *, tasks: int = 300, rounds: int = 3, worker_counts: tuple[int, ...] = (1, 2),
    latency: float = 0.0, say: Any = print,
) -> dict[int, list[float]]:  # fmt: skip
    from tapestry_media.testing.contract_server import ContractServer, Fault

    rates: dict[int, list[float]] = {n: [] for n in worker_counts}
    with ContractServer() as server:
        if latency:
            server.inject(Fault.slow(latency, times=None))
        for round_ in range(rounds):
            order = worker_counts if round_ % 2 == 0 else tuple(reversed(worker_counts))
            for workers in order:
                rate = one_run(server, workers, tasks, f"s{round_}w{workers}")
                rates[workers].append(rate)
                say(f"  submit round {round_ + 1} {workers} worker(s) {rate:7.1f} tasks/s")
        assert server.errors == []
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    harness.prepare()
    rates = run(
        tasks=args.tasks, rounds=args.rounds, worker_counts=tuple(args.workers),
        latency=args.latency,
    )  # fmt: skip
    for workers, values in rates.items():
        print(f"{workers} worker(s): {harness.spread(values)} tasks/s")


if __name__ == "__main__":
    main()
