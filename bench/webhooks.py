"""Webhook throughput and latency: the app's endpoint against a bare Django view doing the same
row writes (``bench/views.py``), both served by the same gunicorn on the same PostgreSQL. The
bare view runs its writes in autocommit (three commits); a second baseline, ``bare-atomic``,
runs them in one transaction (one commit, as the app's delivery does).

    python -m bench.webhooks [--rounds 5] [--requests 1000] [--concurrency 8]

Each run delivers ``--requests`` first deliveries (a signed ``succeeded`` task object for a
distinct pending task, so every one inserts an event, changes a task and its submission) from
``--concurrency`` keep-alive client threads. Runs alternate between the two URLs (the order
rotates every round) on fresh tasks; medians and spread over the rounds are reported.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from typing import Any

from . import harness


@dataclass
class Side:
    name: str
    path: str
    rates: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    #: CPU milliseconds per request: gunicorn workers plus the PostgreSQL backends serving them.
    cpu: list[float] = field(default_factory=list)


def deliver(
    server: harness.Server, side: Side, count: int, concurrency: int, prefix: str
) -> tuple[harness.Load, float]:
    """Deliver ``count`` first deliveries; returns the load and the server's CPU seconds."""
    from tapestry_media.models import Task

    tasks = harness.seed_tasks(count, prefix=prefix)
    requests = [(side.path, harness.task_body(task, "succeeded")) for task in tasks]
    meter = harness.CPUMeter(server)
    load = harness.post_all(server.port, requests, concurrency=concurrency)
    cpu = meter.used()
    if load.statuses != {200: count}:
        raise AssertionError(f"{side.name}: answers {dict(load.statuses)}")
    done = Task.objects.filter(pk__in=[t.pk for t in tasks], status="succeeded").count()
    if done != count:
        raise AssertionError(f"{side.name}: {done} of {count} tasks succeeded")
    return load, cpu


def run(
    *, rounds: int = 5, requests: int = 1000, concurrency: int = 8, workers: int = 2,
    threads: int = 4, warmup: int = 200, say: Any = print,
) -> dict[str, Any]:  # fmt: skip
    harness.reset_tables()
    app = Side("app", harness.WEBHOOK_PATH)
    bare = Side("bare", harness.BARE_PATH)
    atomic = Side("bare-atomic", harness.BARE_ATOMIC_PATH)
    sides = [app, bare, atomic]
    with harness.gunicorn(workers=workers, threads=threads) as server:
        for side in sides:
            deliver(server, side, warmup, concurrency, f"warm{side.name}")
        for round_ in range(rounds):
            order = sides[round_ % 3 :] + sides[: round_ % 3]
            if round_ % 2:
                order.reverse()
            for side in order:
                load, cpu = deliver(server, side, requests, concurrency, f"r{round_}{side.name}")
                side.rates.append(load.rate)
                side.p50.append(load.percentile(50) * 1000)
                side.p99.append(load.percentile(99) * 1000)
                side.cpu.append(cpu / requests * 1000)
                say(
                    f"  webhooks round {round_ + 1} {side.name:<11} {load.rate:7.1f} req/s  "
                    f"p50 {side.p50[-1]:6.1f} ms  p99 {side.p99[-1]:6.1f} ms  "
                    f"server CPU {side.cpu[-1]:5.2f} ms/req"
                )
    ratios = [a / b for a, b in zip(app.rates, bare.rates, strict=True)]
    atomic_ratios = [a / b for a, b in zip(app.rates, atomic.rates, strict=True)]
    return {
        "app": app,
        "bare": bare,
        "bare_atomic": atomic,
        "ratio": statistics.median(app.rates) / statistics.median(bare.rates),
        "round_ratios": ratios,
        "atomic_ratio": statistics.median(app.rates) / statistics.median(atomic.rates),
        "atomic_round_ratios": atomic_ratios,
        # Capacity ratio from CPU per request (bare / app): robust against other load.
        "cpu_ratio": statistics.median(bare.cpu) / statistics.median(app.cpu),
        "config": {
            "rounds": rounds,
            "requests": requests,
            "concurrency": concurrency,
            "gunicorn": f"{workers} gthread workers x {threads} threads",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    harness.prepare()
    result = run(
        rounds=args.rounds, requests=args.requests, concurrency=args.concurrency,
        workers=args.workers, threads=args.threads,
    )  # fmt: skip
    for side in (result["app"], result["bare"], result["bare_atomic"]):
        print(
            f"{side.name:<11} {harness.spread(side.rates)} req/s"
            f"   p50 {harness.spread(side.p50)} ms"
            f"   p99 {harness.spread(side.p99)} ms"
            f"   CPU {harness.spread(side.cpu, '{:.2f}')} ms/req"
        )
    print(
        f"ratio app/bare (medians) {result['ratio']:.3f}; per round "
        f"{harness.spread(result['round_ratios'], '{:.3f}')}; "
        f"CPU-per-request ratio bare/app {result['cpu_ratio']:.3f}"
    )
    print(
        f"ratio app/bare-atomic (medians) {result['atomic_ratio']:.3f}; per round "
        f"{harness.spread(result['atomic_round_ratios'], '{:.3f}')}"
    )


if __name__ == "__main__":
    main()
