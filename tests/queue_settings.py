"""Settings of the queue leg (tests/test_queues.py): the test settings plus one ``TASKS`` alias
per real queue backend. ``default`` stays the DummyBackend the rest of the suite records with.

The leg owns Redis DB 13 (``TAPESTRY_QUEUES_REDIS_DB``) and the RabbitMQ vhost
``tapestry-queues`` (``TAPESTRY_QUEUES_AMQP``); its queue names carry a per-run suffix, so two
runs never share a queue. Worker processes import this module too: the suffix travels in the
environment.
"""

from __future__ import annotations

import os
import uuid
from importlib.util import find_spec

from kombu import Exchange, Queue

from tests.settings import *  # noqa: F403

RUN = os.environ.setdefault("TAPESTRY_QUEUES_RUN", uuid.uuid4().hex[:8])
QUEUE = f"tapestry-leg-{RUN}"
REDIS_DB = int(os.environ.get("TAPESTRY_QUEUES_REDIS_DB", "13"))
AMQP_URL = os.environ.get(
    "TAPESTRY_QUEUES_AMQP", "amqp://guest:guest@127.0.0.1:5672/tapestry-queues"
)

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db", "django_rq"]  # noqa: F405

TASKS = {
    **TASKS,  # noqa: F405
    "q_db": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": [QUEUE]},
    "q_rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [QUEUE]},
    "q_celery": {
        "BACKEND": "django_tasks_celery.CeleryBackend",
        "QUEUES": [QUEUE],
        "OPTIONS": {"CELERY_APP": "tests.queue_celery.app"},
    },
}

# django-tasks-redis: a bench row (bench/queues.py --backends redis), no CI leg (issue 14).
if find_spec("django_tasks_redis"):
    INSTALLED_APPS.append("django_tasks_redis")
    TASKS["q_redis"] = {
        "BACKEND": "django_tasks_redis.RedisTaskBackend",
        "QUEUES": [QUEUE],
        "OPTIONS": {
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "REDIS_KEY_PREFIX": QUEUE,
        },
    }

RQ_QUEUES = {QUEUE: {"HOST": "127.0.0.1", "PORT": 6379, "DB": REDIS_DB}}

# django-tasks-celery maps django.tasks priorities (-100…100) onto AMQP's 0…255: a queue
# declared with a smaller x-max-priority caps them all to one value (docs/deploy.md).
CELERY_BROKER_URL = AMQP_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_QUEUES = [
    Queue(
        QUEUE,
        Exchange("tapestry-leg", type="direct"),
        routing_key=QUEUE,
        queue_arguments={"x-max-priority": 255, "x-expires": 15 * 60 * 1000},
    )
]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# No result backend: the app never reads job results.
SILENCED_SYSTEM_CHECKS = ["django_tasks_celery.W001", "django_tasks_celery.W002"]
