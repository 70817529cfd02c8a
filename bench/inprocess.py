"""Webhook cost per delivery in one process: the app's endpoint and its two peers (a bare Django
view and a DRF APIView on their own minimal tables, ``bench/views.py``) through Django's test
client (the full middleware stack, no HTTP server), on PostgreSQL.

    python -m bench.inprocess [--requests 300] [--rounds 5]

No gunicorn and no client threads, so the figures are the path's own cost: wall and process
CPU per first delivery. Blocks alternate between the endpoints (the order rotates every round)
on fresh tasks; medians and spread are reported. Quicker and steadier than ``bench.peers``
for comparing two versions of the code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from . import harness

SIDES = {
    "app": harness.WEBHOOK_PATH,
    "bare": harness.BARE_PATH,
    "drf": harness.DRF_PATH,
}


def block(client: Any, path: str, count: int, prefix: str) -> tuple[float, float]:
    """``count`` first deliveries to ``path``: (wall ms, process CPU ms) per delivery."""
    if path == harness.WEBHOOK_PATH:
        tasks = harness.seed_tasks(count, prefix=prefix)
    else:
        tasks = harness.seed_peer_tasks(count, prefix=prefix)
    bodies = [harness.task_body(task, "succeeded") for task in tasks]
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        response = client.post(
            path, body, content_type="application/json", headers=harness.sign(body)
        )
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.content[:200]!r}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / count * 1000, cpu / count * 1000


def run(*, requests: int = 300, rounds: int = 5, say: Any = print) -> dict[str, Any]:
    from django.test import Client

    harness.reset_tables()
    client = Client(SERVER_NAME="localhost")
    for name, path in SIDES.items():
        block(client, path, 50, f"warm-{name}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in SIDES}
    names = list(SIDES)
    for round_ in range(rounds):
        order = names[round_ % 3 :] + names[: round_ % 3]
        for name in order:
            results[name].append(block(client, SIDES[name], requests, f"r{round_}-{name}"))
            wall, cpu = results[name][-1]
            say(f"  round {round_ + 1} {name:<11} {wall:6.2f} ms  CPU {cpu:6.2f} ms per delivery")
    wall = {name: statistics.median(w for w, _ in rows) for name, rows in results.items()}
    return {
        "results": results,
        "ratio": wall["bare"] / wall["app"],
        "drf_ratio": wall["drf"] / wall["app"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    harness.prepare()
    out = run(requests=args.requests, rounds=args.rounds)
    for name, rows in out["results"].items():
        walls = [w for w, _ in rows]
        cpus = [c for _, c in rows]
        print(
            f"{name:<11} wall {harness.spread(walls, '{:.2f}')} ms"
            f"   CPU {harness.spread(cpus, '{:.2f}')} ms per delivery"
        )
    print(
        f"throughput ratio app/bare {out['ratio']:.2f}; "
        f"app/drf {out['drf_ratio']:.2f} (from median wall per delivery)"
    )


if __name__ == "__main__":
    main()
