"""Task statuses: the rule for remote moves and normalisation of the API's raw statuses.

Two kinds of move exist:

* *local* moves, made by this app's own jobs (claiming a row for submit, giving it back after a
  transient error, superseding it, starting a new attempt). Each is a conditional write whose
  filter names the statuses it may leave, so two workers cannot both make it; the tests check
  each one against every status (tests/test_status.py) rather than a table kept beside them;
* *remote* moves, reported by the API (reply, webhook, polling). They only ever go forward, so a
  late ``processing`` can never undo ``succeeded``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    CREATED = "created", _("Created")
    SUBMITTING = "submitting", _("Submitting")
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    SUPERSEDED = "superseded", _("Superseded")


TERMINAL: frozenset[Status] = frozenset(
    {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED}
)
#: States a remote report can put a task in.
REMOTE: frozenset[Status] = frozenset(
    {Status.PENDING, Status.PROCESSING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
)
_RANK: dict[Status, int] = {
    Status.CREATED: 0,
    Status.SUBMITTING: 1,
    Status.PENDING: 2,
    Status.PROCESSING: 3,
    Status.SUCCEEDED: 4,
    Status.FAILED: 4,
    Status.CANCELLED: 4,
    Status.SUPERSEDED: 5,
}

_RAW: dict[str, Status] = {
    "pending": Status.PENDING,
    "waiting": Status.PENDING,
    "queued": Status.PENDING,
    "validating": Status.PENDING,
    "processing": Status.PROCESSING,
    "finishing": Status.PROCESSING,
    "running": Status.PROCESSING,
    "succeeded": Status.SUCCEEDED,
    "completed": Status.SUCCEEDED,
    "ready": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "error": Status.FAILED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
}


def raw_values(status: Status) -> list[str]:
    """The raw API statuses (lower case) that :func:`normalize` maps to ``status``."""
    return sorted(raw for raw, normal in _RAW.items() if normal == status)


def normalize(raw: object) -> Status | None:
    """Map a raw API status to a :class:`Status`; ``None`` for one we do not know."""
    if not isinstance(raw, str):
        return None
    return _RAW.get(raw.strip().lower())


def can_apply_remote(current: str, reported: Status | None) -> bool:
    """Whether a status the API reported may replace ``current``: forward only, never past
    a terminal state. An unknown status (``None``) never changes anything."""
    if reported is None or reported not in REMOTE:
        return False
    current_status = Status(current)
    if current_status in TERMINAL:
        return False
    return _RANK[reported] > _RANK[current_status]
