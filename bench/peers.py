"""Webhook throughput against the peers a host would pick instead (issue 12's targets).

    python -m bench.peers [--rounds 5] [--seconds 8] [--tasks 10000] [--connections 16]

One gunicorn (2 sync workers, ``CONN_MAX_AGE`` 600) serves three endpoints on the same
PostgreSQL database:

* ``bare`` — a plain Django view: the same HMAC, then in one transaction an INSERT into a minimal
  event table (unique key) and a locked UPDATE of a minimal task table (``bench/views.py``,
  ``bench/minimal``: the host's own tables, not the app's);
* ``drf`` — a DRF ``APIView`` doing the same;
* ``upload`` — the bare view of a host that also keeps an upload status per task, as the app
  does (each task in an upload of its own; the upload locked, its tasks read, its status
  written: the app's write-skew guard, in the host's own tables);
* ``app`` — the app's endpoint (``/tapestry/webhooks/ittybit/``).

Each run: the side's tables are emptied and 10,000 pending tasks preloaded (for the app one
submission each), ``VACUUM ANALYZE``; the signed bodies — one distinct first ``succeeded``
delivery per task — are written to a file ahead; then ``wrk`` (one thread, 16 connections,
``Connection: close``, pinned to one CPU with ``taskset``) sends them for ``--seconds``
(``bench/deliveries.lua``). Rounds interleave the sides (the order rotates and reverses).

Per run: requests/s and latency (wrk), CPU per delivery of the gunicorn workers and of the
PostgreSQL backends serving them (``/proc/<pid>/stat``), the HOT share of the updates of the
task and submission tables (``pg_stat_user_tables``: ``n_tup_hot_upd / n_tup_upd`` over the run),
and the CPU the rest of the machine used meanwhile (``/proc/stat`` minus ours), since the
machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import harness

LUA = Path(__file__).with_name("deliveries.lua")

#: side -> (path, the tables its deliveries update, for the HOT share)
SIDES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bare": (harness.BARE_PATH, ("bench_minimal_peertask",)),
    "drf": (harness.DRF_PATH, ("bench_minimal_peertask",)),
    "upload": (harness.UPLOAD_PATH, ("bench_minimal_peertask", "bench_minimal_peerupload")),
    "app": (harness.WEBHOOK_PATH, ("tapestry_media_task", "tapestry_media_submission")),
}


@dataclass
class Run:
    side: str
    rate: float
    answered: int
    p50_ms: float
    p99_ms: float
    app_cpu_ms: float  # gunicorn workers, per delivery
    db_cpu_ms: float  # PostgreSQL backends serving them, per delivery
    other_cores: float  # CPU the rest of the machine used during the run, in cores
    hot: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (hot, updates)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed (scripts/bench.sh installs the Debian package)")
    return found


#: Niceness of the server, its database backends and wrk during the runs (``--nice``): on a shared
#: machine a negative value makes other load disturb the measurement less (needs root).
NICE = -10 if os.geteuid() == 0 else 0


def renice(pids: list[int]) -> None:
    """``NICE`` for each process and for its autogroup: with ``sched_autogroup_enabled`` (the
    default on desktops and many VMs) each session — gunicorn's, each PostgreSQL backend's — is
    scheduled as one group against the others, and a process's own niceness counts only inside
    its group."""
    for pid in pids:
        os.setpriority(os.PRIO_PROCESS, pid, NICE)
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(NICE))


def bench_cpu() -> int:
    """The CPU wrk is pinned to: the last one (gunicorn and PostgreSQL are not pinned)."""
    return max(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Variant:
    """A side as named on the command line: ``bare``, ``drf``, ``upload``, ``app``, or the app with
    modifiers — ``app+ff90`` (its task and submission tables at fillfactor 90), ``app+oldindexes``
    (with the indexes migration 0007 dropped, as before it)."""

    name: str
    fillfactor: int | None = None
    old_indexes: bool = False


def split_side(side: str) -> Variant:
    name, *modifiers = side.split("+")
    fillfactor, old_indexes = None, False
    for modifier in modifiers:
        if modifier.startswith("ff") and modifier[2:].isdigit():
            fillfactor = int(modifier[2:])
        elif modifier == "oldindexes":
            old_indexes = True
        else:
            name = ""
    if name not in SIDES or (modifiers and name != "app"):
        raise SystemExit(
            f"unknown side {side!r}: bare, drf, upload, app, app+ff<N>, app+oldindexes"
        )
    return Variant(name, fillfactor, old_indexes)


def old_indexes(create: bool) -> None:
    """Put back (or drop again) the indexes migration 0007 dropped: the schema before it."""
    from django.db import connection

    migration = importlib.import_module("tapestry_media.migrations.0007_drop_unused_indexes")
    with connection.cursor() as cursor:
        for name, definition in migration.POSTGRESQL_INDEXES.items():
            if create:
                cursor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON {definition}')
            else:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def fillfactors(tables: tuple[str, ...]) -> dict[str, int | None]:
    """Each table's fillfactor setting (None: PostgreSQL's default, 100)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, (SELECT split_part(o, '=', 2) FROM unnest(reloptions) AS o "
            "WHERE o LIKE 'fillfactor=%%') FROM pg_class WHERE relname = ANY(%s)",
            [list(tables)],
        )
        return {name: int(value) if value else None for name, value in cursor.fetchall()}


def set_fillfactor(settings: dict[str, int | None]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table, fillfactor in settings.items():
            if fillfactor is None:
                cursor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
            else:
                cursor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(fillfactor)})")


def prepare_side(side: str, tasks: int, prefix: str, directory: Path) -> Path:
    """Empty the side's tables, preload ``tasks`` pending tasks, write the signed bodies, VACUUM
    ANALYZE. Returns the bodies file."""
    from django.db import connection

    variant = split_side(side)
    harness.reset_tables()
    if variant.old_indexes:  # on the emptied tables, before the rows: as if built with them
        old_indexes(create=True)
    if variant.name == "app":
        rows = harness.seed_tasks(tasks, prefix=prefix, steps=1)
    else:
        rows = harness.seed_peer_tasks(tasks, prefix=prefix, uploads=variant.name == "upload")
    path = directory / f"{prefix}.txt"
    with path.open("wb") as handle:
        for row in rows:
            body = harness.task_body(row, "succeeded")
            handle.write(harness.sign(body)["Ittybit-Signature"].encode() + b" " + body + b"\n")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return path


def table_updates(tables: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [list(tables)],
        )
        return {name: (hot, upd) for name, hot, upd in cursor.fetchall()}


def client_backends() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def one_run(
    server: harness.Server, side: str, *, tasks: int, seconds: float, connections: int,
    prefix: str, directory: Path, warm: bool = False,
) -> Run:  # fmt: skip
    variant = split_side(side)
    tables = SIDES[variant.name][1]
    kept = fillfactors(tables)
    if variant.fillfactor is not None:
        set_fillfactor({table: variant.fillfactor for table in tables})
    try:
        return _measure(server, side, tasks=tasks, seconds=seconds, connections=connections,
                        prefix=prefix, directory=directory, warm=warm)  # fmt: skip
    finally:
        set_fillfactor(kept)
        if variant.old_indexes:
            old_indexes(create=False)


def _measure(
    server: harness.Server, side: str, *, tasks: int, seconds: float, connections: int,
    prefix: str, directory: Path, warm: bool,
) -> Run:  # fmt: skip
    path, tables = SIDES[split_side(side).name]
    bodies = prepare_side(side, tasks, prefix, directory)
    before_updates = table_updates(tables)
    workers = server.worker_pids()
    backends = client_backends()
    cpu_before = harness.cpu_seconds([*workers, *backends])
    busy_before = machine_busy()
    children_before = os.times()
    argv = [
        "taskset", "-c", str(bench_cpu()), ensure_wrk(), "-t1", f"-c{connections}",
        f"-d{seconds:g}s", "--timeout", "30s", "-s", str(LUA),
        f"http://127.0.0.1:{server.port}", "--", str(bodies), path,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    if NICE:
        renice([process.pid])
    stdout, stderr = process.communicate(timeout=seconds + 120)
    done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    children_after = os.times()
    busy = machine_busy() - busy_before
    backends_after = client_backends()
    cpu_after = harness.cpu_seconds([*workers, *backends_after])
    line = next((s for s in done.stdout.splitlines() if s.startswith("WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(line[4:])
    answered = result["statuses"].get("200", 0)
    problems = {k: v for k, v in result["errors"].items() if v}
    if set(result["statuses"]) != {"200"} or problems:
        raise AssertionError(f"{side}: answers {result['statuses']}, errors {problems}")
    if answered >= result["prepared"]:
        raise AssertionError(f"{side}: the {result['prepared']} prepared deliveries ran out")
    if not warm and sorted(backends_after) != sorted(backends):
        # CONN_MAX_AGE keeps one connection per worker; a new one would escape the CPU meter.
        raise AssertionError(f"{side}: database connections changed {backends} -> {backends_after}")
    wrk_cpu = (children_after.children_user + children_after.children_system) - (
        children_before.children_user + children_before.children_system
    )
    app_cpu = sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in workers if p in cpu_after)
    db_cpu = sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in backends if p in cpu_after)
    wall = result["duration_us"] / 1e6
    hot = _updates_after(tables, before_updates, answered)
    if split_side(side).name == "upload":
        _check_uploads(answered)
    return Run(
        side=side,
        rate=answered / wall,
        answered=answered,
        p50_ms=result["latency_us"]["p50"] / 1000,
        p99_ms=result["latency_us"]["p99"] / 1000,
        app_cpu_ms=app_cpu / answered * 1000,
        db_cpu_ms=db_cpu / answered * 1000,
        other_cores=max(0.0, busy - app_cpu - db_cpu - wrk_cpu) / wall,
        hot=hot,
    )


def _updates_after(
    tables: tuple[str, ...], before: dict[str, tuple[int, int]], answered: int
) -> dict[str, tuple[int, int]]:
    """(HOT updates, updates) of each table during the run. The server's backends report their
    counts to the statistics a moment after they go idle: wait until the first table (one update
    per delivery) shows at least the answered ones and the counts stop moving (the requests
    still in flight when wrk stopped count too)."""
    deadline = time.monotonic() + 30
    last: dict[str, tuple[int, int]] = {}
    while True:
        now = table_updates(tables)
        delta = {t: (now[t][0] - before[t][0], now[t][1] - before[t][1]) for t in tables}
        settled = delta == last and delta[tables[0]][1] >= answered
        if settled or time.monotonic() > deadline:
            return delta
        last = delta
        time.sleep(1.2)


def _check_uploads(answered: int) -> None:
    """The upload peer did its job: every upload whose task succeeded is ``ready`` (one task
    per upload here), at least one per answered delivery."""
    from bench.minimal.models import PeerUpload

    behind = PeerUpload.objects.filter(status="processing", peertask__status="succeeded").count()
    ready = PeerUpload.objects.filter(status="ready").count()
    if behind or ready < answered:
        raise AssertionError(f"upload: {behind} uploads behind their task, {ready} ready")


def hot_share(runs: list[Run], table: str) -> float:
    hot = sum(r.hot[table][0] for r in runs)
    updates = sum(r.hot[table][1] for r in runs)
    return hot / updates if updates else float("nan")


def run(
    *, rounds: int = 5, seconds: float = 8.0, tasks: int = 10_000, connections: int = 16,
    sides: tuple[str, ...] = ("bare", "drf", "upload", "app"), synchronous_commit: str = "on",
    say: Any = print,
) -> dict[str, Any]:  # fmt: skip
    ensure_wrk()
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    clock = time.monotonic()
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp,
        harness.gunicorn(workers=2, sync=True) as server,
    ):
        directory = Path(tmp)
        for side in sides:  # warm-up: imports, connections, caches; not counted
            one_run(server, side, tasks=2000, seconds=2, connections=connections,
                    prefix=f"warm{side}", directory=directory, warm=True)  # fmt: skip
        if NICE:
            renice([server.pid, *server.worker_pids(), *client_backends()])
        for round_ in range(rounds):
            order = list(sides[round_ % len(sides) :] + sides[: round_ % len(sides)])
            if round_ % 2:
                order.reverse()
            for side in order:
                r = one_run(server, side, tasks=tasks, seconds=seconds, connections=connections,
                            prefix=f"r{round_}{side}", directory=directory)  # fmt: skip
                runs[side].append(r)
                hot = ", ".join(f"{t.rsplit('_', 1)[1]} HOT {h}/{u}" for t, (h, u) in r.hot.items())
                say(
                    f"  peers round {round_ + 1} {side:<6} {r.rate:7.1f} req/s  p50 "
                    f"{r.p50_ms:5.1f} ms  p99 {r.p99_ms:6.1f} ms  CPU/delivery: gunicorn "
                    f"{r.app_cpu_ms:5.2f} ms, PostgreSQL {r.db_cpu_ms:5.2f} ms; {hot}; "
                    f"others {r.other_cores:.2f} cores",
                    flush=True,
                )
    return summarize(runs, {
        "rounds": rounds, "seconds": seconds, "tasks": tasks, "connections": connections,
        "started": started, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "minutes": (time.monotonic() - clock) / 60, "nice": NICE,
        "synchronous_commit": synchronous_commit,
    })  # fmt: skip


def summarize(runs: dict[str, list[Run]], config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs, "config": config, "ratios": {}, "hot": {}}
    for side, mine in runs.items():
        if split_side(side).name != "app":
            continue
        for peer in ("bare", "drf", "upload"):
            if peer not in runs:
                continue
            theirs = runs[peer]
            out["ratios"][f"{side}/{peer}"] = {
                "medians": statistics.median(r.rate for r in mine)
                / statistics.median(r.rate for r in theirs),
                "per_round": [a.rate / p.rate for a, p in zip(mine, theirs, strict=True)],
                "db_cpu": statistics.median(r.db_cpu_ms for r in mine)
                / statistics.median(r.db_cpu_ms for r in theirs),
                # Capacity from CPU per delivery (gunicorn + PostgreSQL): less sensitive to
                # other load than requests/s, though contention inflates CPU time too.
                "cpu": statistics.median(p.app_cpu_ms + p.db_cpu_ms for p in theirs)
                / statistics.median(a.app_cpu_ms + a.db_cpu_ms for a in mine),
            }
        out["hot"][side] = {t: hot_share(mine, t) for t in SIDES["app"][1]}
    for peer in ("bare", "upload"):
        if peer in runs:
            out["hot"][peer] = {t: hot_share(runs[peer], t) for t in SIDES[peer][1]}
    return out


def report(result: dict[str, Any]) -> list[str]:
    lines = []
    for side, runs in result["runs"].items():
        lines.append(
            f"{side:<6} {harness.spread([r.rate for r in runs])} req/s;"
            f" p50 {harness.spread([r.p50_ms for r in runs])} ms,"
            f" p99 {harness.spread([r.p99_ms for r in runs])} ms;"
            f" CPU per delivery: gunicorn {harness.spread([r.app_cpu_ms for r in runs], '{:.2f}')}"
            f" ms, PostgreSQL {harness.spread([r.db_cpu_ms for r in runs], '{:.2f}')} ms;"
            f" others {harness.spread([r.other_cores for r in runs], '{:.2f}')} cores"
        )
    for pair, ratio in result["ratios"].items():
        lines.append(
            f"{pair}: {ratio['medians']:.3f} (medians); per round "
            f"{harness.spread(ratio['per_round'], '{:.3f}')}; from CPU per delivery "
            f"{ratio['cpu']:.3f}; PostgreSQL CPU per delivery {ratio['db_cpu']:.2f}x"
        )
    for side, shares in result["hot"].items():
        lines.append(
            f"HOT updates ({side}): " + ", ".join(f"{t} {v:.1%}" for t, v in shares.items())
        )
    c = result["config"]
    lines.append(
        f"{c['rounds']} rounds x {c['seconds']:g} s, {c['tasks']} tasks, {c['connections']}"
        f" connections; synchronous_commit {c['synchronous_commit']}; nice {c['nice']};"
        f" started {c['started']}, took {c['minutes']:.1f} min;"
        f" load average before"
        f" {c['loadavg_before'][0]:.2f}, after {c['loadavg_after'][0]:.2f}"
    )
    return lines


def main() -> None:
    global NICE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--sides", default="bare,drf,upload,app", help="also app+ff<N>, app+oldindexes"
    )
    parser.add_argument("--nice", type=int, default=NICE)
    parser.add_argument(
        "--synchronous-commit", default="on", choices=("on", "off"),
        help="the server's sessions' synchronous_commit (off: figures free of fsync latency)",
    )  # fmt: skip
    args = parser.parse_args()
    NICE = args.nice
    harness.prepare()
    result = run(
        rounds=args.rounds, seconds=args.seconds, tasks=args.tasks,
        connections=args.connections, sides=tuple(args.sides.split(",")),
        synchronous_commit=args.synchronous_commit,
    )  # fmt: skip
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
