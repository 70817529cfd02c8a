"""The worker processes of the queue leg (tests/test_queues.py) and of the queue benchmark
(bench/queues.py): one command per task backend, each one process with one job in flight."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from tapestry_media.tasks_shim import task_backends

#: The leg's queue (tests/queue_settings.py); empty under other settings.
QUEUE: str = getattr(settings, "QUEUE", "")


@dataclass(frozen=True)
class Backend:
    alias: str
    #: what the worker prints once it takes jobs
    ready: str
    command: tuple[str, ...]

    @property
    def supports_priority(self) -> bool:
        return bool(task_backends[self.alias].supports_priority)


BACKENDS = {
    "db": Backend(
        "q_db",
        "Starting worker",
        ("-m", "django", "db_worker", "--backend", "q_db", "--queue-name", QUEUE,
         "--no-startup-delay", "--no-reload", "--interval", "0.05"),
    ),
    "rq": Backend(
        "q_rq",
        "Listening on",
        ("-m", "django", "rqworker", QUEUE, "--job-class", "django_tasks_rq.Job",
         "--with-scheduler"),
    ),
    "celery": Backend(
        "q_celery",
        " ready.",
        ("-m", "celery", "-A", "tests.queue_celery", "worker", "-Q", QUEUE, "-c", "1",
         "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip",
         "--without-heartbeat", "-l", "info", "-n", f"{QUEUE}@%h"),
    ),
}  # fmt: skip

#: Measured by the queue benchmark only (bench/queues.py --backends redis), not in the CI leg.
BENCH_ONLY = {
    "redis": Backend(
        "q_redis",
        "Starting Redis task worker",
        ("-m", "django", "run_redis_tasks", "--backend", "q_redis", "--queue", QUEUE,
         "--continuous"),
    ),
}  # fmt: skip


def empty_the_queue(name: str) -> None:
    """Nothing left over from an earlier test on the broker's queue."""
    if name == "rq":
        import django_rq

        queue = django_rq.get_queue(QUEUE)
        queue.empty()
        for job_id in queue.scheduled_job_registry.get_job_ids():
            queue.scheduled_job_registry.remove(job_id, delete_job=True)
    elif name == "redis":
        from tapestry_media.tasks_shim import task_backends

        client = task_backends["q_redis"].get_client()  # type: ignore[attr-defined]
        for key in client.scan_iter(match=f"{QUEUE}*"):
            client.delete(key)
    elif name == "celery":
        from tests.queue_celery import app

        with app.connection_for_write() as conn:
            app.amqp.queues[QUEUE].bind(conn.default_channel).declare()
            app.amqp.queues[QUEUE].bind(conn.default_channel).purge()
