"""A backend that talks to nobody: records calls, answers as told. For tests and demos."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..remote import RemoteTask
from ..status import Status, normalize
from .base import BackendError, BaseBackend, PermanentBackendError, TaskSpec


@dataclass(frozen=True)
class CreateCall:
    spec: TaskSpec
    idempotency_key: str


class DummyBackend(BaseBackend):
    """Answers ``create`` with a ``pending`` task whose id derives from the idempotency key
    (so a replayed key returns the same task, as the real API does).

    Steer it from tests through the class attributes (shared by all instances):
    ``failures`` is a list of exceptions raised by the next ``create`` calls, in order;
    ``on_create`` is called with each spec before answering (e.g. to deliver a webhook
    "during" the call); ``calls`` records every call; ``tasks`` holds the state ``get`` returns.
    """

    name = "dummy"
    supports_get = True

    calls: ClassVar[list[CreateCall]] = []
    failures: ClassVar[list[BackendError]] = []
    tasks: ClassVar[dict[str, RemoteTask]] = {}
    on_create: ClassVar[Callable[[TaskSpec, str], None] | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls.calls = []
            cls.failures = []
            cls.tasks = {}
            cls.on_create = None

    def create(self, spec: TaskSpec, *, idempotency_key: str) -> RemoteTask:
        with self._lock:
            self.calls.append(CreateCall(spec, idempotency_key))
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        remote_id = f"task_dummy_{idempotency_key}"
        hook = type(self).on_create
        if hook is not None:
            hook(spec, remote_id)
        with self._lock:
            task = self.tasks.get(remote_id)
            if task is None:
                task = RemoteTask(
                    id=remote_id,
                    status=Status.PENDING,
                    raw_status="pending",
                    kind=spec.kind,
                    metadata=dict(spec.metadata),
                    raw={"id": remote_id, "status": "pending", **spec.as_payload()},
                )
                self.tasks[remote_id] = task
        return task

    def get(self, remote_id: str) -> RemoteTask:
        with self._lock:
            task = self.tasks.get(remote_id)
        if task is None:
            raise PermanentBackendError(f"no task {remote_id!r}", kind="not_found", status_code=404)
        return task

    @classmethod
    def finish(cls, remote_id: str, status: str = "succeeded", **fields: Any) -> RemoteTask:
        """Move a recorded task on, as the remote service would."""
        with cls._lock:
            task = replace(
                cls.tasks[remote_id], status=normalize(status), raw_status=status, **fields
            )
            cls.tasks[remote_id] = task
        return task
