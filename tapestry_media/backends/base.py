"""The interface every task backend implements, in the spirit of Django's mail backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..conf import Settings
from ..remote import RemoteTask


@dataclass(frozen=True)
class TaskSpec:
    """What ``POST /tasks`` sends: the seed's four fields, plus an optional webhook URL."""

    input: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    webhook_url: str = ""

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "input": self.input,
            "kind": self.kind,
            "options": dict(self.options),
            "metadata": dict(self.metadata),
        }
        if self.webhook_url:
            payload["webhook_url"] = self.webhook_url
        return payload


@dataclass(frozen=True)
class WebhookKey:
    """A secret a webhook may be signed with, and what it vouches for: ``scope`` ``None``
    for any task, else only tasks whose ``backend`` is ``scope``."""

    secret: str = field(repr=False)
    scope: str | None = None


class BackendError(Exception):
    """A backend call failed. ``retryable`` says whether trying again later may succeed."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status_code = status_code
        self.retry_after = retry_after

    def as_error(self) -> dict[str, str]:
        """The shape stored in ``Task.error``."""
        error = {"kind": self.kind or type(self).__name__, "message": self.message}
        if self.status_code is not None:
            error["status_code"] = str(self.status_code)
        return error


class TransientBackendError(BackendError):
    """Timeouts, connection errors, 408/409/429/5xx: retry with the same idempotency key."""

    retryable = True


class PermanentBackendError(BackendError):
    """The API refused the task (400/402/403/404/422): retrying the same request is pointless."""


class AuthenticationError(PermanentBackendError):
    """401: the API key is missing or wrong."""


class NotSupported(PermanentBackendError):
    """The backend lacks the capability asked for."""


class BaseBackend:
    """Create and fetch tasks. Subclasses set the capability flags they really have."""

    #: ``get()`` fetches a task's current state (polling, resync).
    supports_get: ClassVar[bool] = False
    #: Results arrive on their own through the webhook path (cloud webhooks, local engine).
    delivers_results: ClassVar[bool] = False
    #: ``input`` may be a storage name rather than a public URL.
    accepts_storage_input: ClassVar[bool] = False
    #: ``event_pages()`` reads the API's past events (a backfill of lost webhooks).
    supports_events: bool = False
    #: The event topics a backfill reads.
    BACKFILL_KINDS: ClassVar[tuple[str, ...]] = ()

    name: ClassVar[str] = "base"

    def __init__(self, config: Settings) -> None:
        self.config = config

    @classmethod
    def webhook_keys(cls, config: Settings) -> list[WebhookKey]:
        """Keys of this backend's own, besides ``WEBHOOK_SECRETS`` (which vouch for any task)."""
        return []

    def create(self, spec: TaskSpec, *, idempotency_key: str) -> RemoteTask:
        raise NotImplementedError

    def get(self, remote_id: str) -> RemoteTask:
        raise NotSupported(f"the {self.name!r} backend cannot fetch tasks", kind="not_supported")

    def event_pages(self, *, kind: str, after: str = "") -> Iterator[list[dict[str, Any]]]:
        """Past events of topic ``kind`` after event ``after``, oldest first, page by page."""
        raise NotSupported(f"the {self.name!r} backend has no events", kind="not_supported")

    def close(self) -> None:
        """Release pooled resources."""
