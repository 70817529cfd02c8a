"""Plumbing shared by the benchmarks: the bench database, Django set-up, gunicorn and db_worker
processes, a keep-alive HTTP load client, seeding and statistics.

Everything runs on 127.0.0.1; every loop is bounded in count and in time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tapestry_bench"
)
SECRET = "bench-webhook-secret-not-for-production"
MEDIA_ROOT = Path(os.environ.get("BENCH_MEDIA_ROOT", "/tmp/tapestry-bench-media"))
WEBHOOK_PATH = "/tapestry/webhooks/ittybit/"
BARE_PATH = "/bench/peer/bare/"
DRF_PATH = "/bench/peer/drf/"
UPLOAD_PATH = "/bench/peer/upload/"


def environment(**extra: str) -> dict[str, str]:
    """The environment of every bench process (this one, gunicorn, workers)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        "DATABASE_URL": DATABASE_URL,
        "ITTYBIT_WEBHOOK_SECRET": SECRET,
        "MEDIA_ROOT": str(MEDIA_ROOT),
        "LOG_LEVEL": "ERROR",
        "DEBUG": "false",
    }
    env.update(extra)
    return env


def setup_django(**extra: str) -> None:
    """Configure this process for the bench site (call once, before importing models)."""
    import django

    os.environ.update(environment(**extra))
    for path in (str(ROOT), str(EXAMPLE)):
        if path not in sys.path:
            sys.path.insert(0, path)
    MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    django.setup()


def ensure_database(url: str = DATABASE_URL) -> None:
    """Create the bench database if it does not exist (never drops anything)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare() -> None:
    """What every bench command does first: the database, this process's Django, the schema."""
    ensure_database()
    setup_django()
    migrate()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def reset_tables() -> None:
    """Empty the app's tables and the job queue (the bench database only)."""
    from django.db import connection

    assert connection.settings_dict["NAME"] != "test", "refusing to truncate the test database"
    tables = [
        "tapestry_media_webhookevent",
        "tapestry_media_task",
        "tapestry_media_submission",
        "tapestry_media_localjob",
        "django_tasks_database_dbtaskresult",
        "bench_minimal_peertask",
        "bench_minimal_peerevent",
        "bench_minimal_peerupload",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:g}s waiting for {what}")
        time.sleep(every)


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A running gunicorn: its port and master pid."""

    port: int
    pid: int

    def worker_pids(self) -> list[int]:
        return children(self.pid)


@contextmanager
def gunicorn(
    workers: int = 2, threads: int = 4, *, sync: bool = False, **env: str
) -> Iterator[Server]:
    """The bench site under gunicorn: gthread workers with keep-alive, or with ``sync`` the
    default sync workers (one request at a time each, no keep-alive)."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "bench.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    if sync:
        argv += ["--worker-class", "sync"]
    else:
        argv += ["--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30"]
    process = subprocess.Popen(argv, cwd=ROOT, env=environment(**env), start_new_session=True)
    try:
        wait_until(lambda: _answers(port) or process.poll() is not None, 60, "gunicorn")
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        for _ in range(workers * threads * 2):  # every worker imports the site before timing
            _answers(port)
        yield Server(port, process.pid)
    finally:
        stop(process)


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/bench/ping/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start_workers(
    count: int, *, ids: Sequence[str] = (), **env: str
) -> list[subprocess.Popen[bytes]]:
    """``manage.py db_worker`` processes (django-tasks-db) on the bench database, with the
    worker ids ``ids`` when given (they show in the job rows' ``worker_ids``)."""
    argv = [
        sys.executable, str(EXAMPLE / "manage.py"), "db_worker",
        "--no-reload", "--no-startup-delay", "--interval", "0.05", "--verbosity", "0",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            argv + (["--worker-id", ids[i]] if i < len(ids) else []),
            cwd=ROOT,
            env=environment(**env),
            start_new_session=True,
        )
        for i in range(count)
    ]


def stop(process: subprocess.Popen[Any], *, kill: bool = False) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (all its threads) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def database_backends() -> list[int]:
    """PostgreSQL backend pids connected to the bench database, except this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


class CPUMeter:
    """CPU seconds used by a gunicorn's workers and by the database backends serving them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._sample()

    def _sample(self) -> dict[int, float]:
        return cpu_seconds([*self.server.worker_pids(), *database_backends()])

    def used(self) -> float:
        end = self._sample()
        return sum(end[pid] - self.start.get(pid, 0.0) for pid in end)


# --- HTTP load ----------------------------------------------------------------------------------


@dataclass
class Load:
    """The outcome of :func:`post_all`."""

    wall: float
    latencies: list[float]
    statuses: Counter[int | str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)


def sign(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ittybit-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


def post_all(
    port: int, requests: Sequence[tuple[str, bytes]], *, concurrency: int, timeout: float = 600
) -> Load:
    """POST every ``(path, body)`` (signed) from ``concurrency`` threads, each on a kept-alive
    connection, as fast as answers come. A transport error is recorded (status ``"error"``) and
    the request is not retried: the caller decides what a lost answer means."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    deadline = time.monotonic() + timeout

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        seen: Counter[int | str] = Counter()
        while time.monotonic() < deadline:
            index = next(counter)
            if index >= len(requests):
                break
            path, body = requests[index]
            started = time.perf_counter()
            try:
                conn.request("POST", path, body, sign(body))
                response = conn.getresponse()
                response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = "error"
            mine.append(time.perf_counter() - started)
            seen[status] += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(time.perf_counter() - started, latencies, statuses)


# --- data -----------------------------------------------------------------------------------


def seed_tasks(count: int, *, prefix: str, steps: int = 2, remote_ids: bool = True) -> list[Any]:
    """``count`` tasks in ``count / steps`` submissions (a video and a poster each), pending at
    the API with a remote id, as after a submit. Bulk inserts: no receivers, no jobs."""
    from tapestry_media.models import Submission, Task

    submissions = Submission.objects.bulk_create(
        (
            Submission(file=f"bench/{prefix}-{i}.mp4", media_kind="video", status="pending")
            for i in range(-(-count // steps))
        ),
        batch_size=2000,
    )
    tasks = []
    for index in range(count):
        submission = submissions[index // steps]
        step = index % steps
        correlation = uuid.uuid4()
        tasks.append(
            Task(
                submission=submission,
                uuid=correlation,
                name=("video", "poster")[step] if steps == 2 else f"step{step}",
                is_primary=step == 0,
                kind="video" if step == 0 else "image",
                input=f"https://tapestry-app.com/media/bench/{prefix}-{index}.mp4",
                options={"width": 1280, "format": "mp4"},
                metadata={
                    "user_id": "usr_1",
                    "submission_id": submission.public_id,
                    "tapestry_task": str(correlation),
                },
                status="pending",
                backend="ittybit",
                remote_id=f"task_{prefix}_{index}" if remote_ids else None,
            )
        )
    return Task.objects.bulk_create(tasks, batch_size=2000)


def seed_peer_tasks(count: int, *, prefix: str, uploads: bool = False) -> list[Any]:
    """``count`` pending rows in the peers' own minimal task table (``bench/minimal``); with
    ``uploads``, each in an upload of its own, ``processing``."""
    from django.utils import timezone

    from bench.minimal.models import PeerTask, PeerUpload

    now = timezone.now()
    parents: list[Any] = [None] * count
    if uploads:
        parents = PeerUpload.objects.bulk_create(
            (PeerUpload(status="processing", updated_at=now) for _ in range(count)),
            batch_size=2000,
        )
    return PeerTask.objects.bulk_create(
        (
            PeerTask(remote_id=f"peer_{prefix}_{i}", status="pending", updated_at=now, upload=up)
            for i, up in enumerate(parents)
        ),
        batch_size=2000,
    )


def task_body(task: Any, status: str, *, progress: int | None = None, event: bool = False) -> bytes:
    """A webhook body for ``task`` (an app Task or a peer's row), as the API sends it (bare task
    object or event envelope)."""
    rid = task.remote_id or f"task_late_{task.uuid.hex[:16]}"
    data: dict[str, Any] = {
        "id": rid,
        "object": "task",
        "kind": getattr(task, "kind", "video"),
        "status": status,
        "progress": 100 if status == "succeeded" else progress,
        "metadata": getattr(task, "metadata", {}),
        "output": (
            {
                "url": f"https://cdn.example.test/{rid}.mp4",
                "kind": getattr(task, "kind", "video"),
                "format": "mp4",
            }
            if status == "succeeded"
            else None
        ),
        "error": None,
    }
    if event:
        topic = "task.succeeded" if status == "succeeded" else "task.updated"
        data = {
            "id": f"evt_{uuid.uuid4().hex[:20]}",
            "object": "event",
            "kind": topic,
            "created_at": int(time.time()),
            "data": data,
        }
    return json.dumps(data, separators=(",", ":")).encode()


# --- statistics and the machine -----------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Iterable[float], fmt: str = "{:.1f}") -> str:
    """``median (min-max)``."""
    items = list(values)
    low, high = fmt.format(min(items)), fmt.format(max(items))
    return f"{fmt.format(statistics.median(items))} ({low}-{high})"


def machine() -> dict[str, str]:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": f"{os.cpu_count()} ({cpu})",
        "memory": memory,
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "os": platform.platform(),
    }
