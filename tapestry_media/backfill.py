"""Backfill lost results from the API's Events resource, in one pass (``resync`` runs it first).

For each topic the backend reads (``BACKFILL_KINDS``), the events after the stored cursor
(:class:`~tapestry_media.models.EventCursor`) are read oldest first and each goes through the
webhook path (:func:`webhooks.deliver`, source ``events``): an event that was delivered
already is a duplicate there and changes nothing, and an event for a task not known yet waits
unmatched like any delivery. The cursor moves after each page, so the next pass starts where
this one ended and a pass cut short repeats at most one page (whose events then dedup).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import webhooks
from .backends import BackendError, BaseBackend
from .models import EventCursor, WebhookEvent
from .remote import PayloadError

logger = logging.getLogger("tapestry_media.backfill")


@dataclass
class Report:
    """What one backfill pass did: events read, and each one's receipt status (``applied``,
    ``duplicate``, ``unmatched``, ``stale``, …, ``not_a_task``, ``failed``)."""

    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: A topic whose reading failed (``{kind: message}``); the next pass retries it.
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items()))
        return f"{self.events} event(s) read" + (f": {counts}" if counts else "")


def run(backend: BaseBackend, *, progress: Callable[[str], None] | None = None) -> Report:
    """One pass over every topic ``backend`` backfills. Needs ``backend.supports_events``."""
    report = Report()
    for kind in backend.BACKFILL_KINDS:
        after = cursor(backend.name, kind)
        try:
            for page in backend.event_pages(kind=kind, after=after):
                for event in page:
                    report.outcomes[_deliver(event)] += 1
                report.events += len(page)
                last = page[-1].get("id")
                if isinstance(last, str) and last:
                    _save_cursor(backend.name, kind, last)
                if progress:
                    progress(f"events backfill ({kind}): {report.summary()}")
        except BackendError as exc:
            logger.warning("events backfill of %s stopped, the next pass resumes: %s", kind, exc)
            report.errors[kind] = exc.message
    return report


def cursor(backend: str, kind: str) -> str:
    """The id of the last event read for ``backend`` and ``kind`` ("" before the first pass)."""
    rows = EventCursor.objects.filter(backend=backend, kind=kind)
    return rows.values_list("after", flat=True).first() or ""


def _save_cursor(backend: str, kind: str, after: str) -> None:
    limit = EventCursor._meta.get_field("after").max_length or 200
    if len(after) <= limit:
        EventCursor.objects.update_or_create(backend=backend, kind=kind, defaults={"after": after})


def _deliver(event: dict[str, object]) -> str:
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        receipt = webhooks.deliver(body, source=WebhookEvent.Source.EVENTS)
    except PayloadError:
        return "not_a_task"  # e.g. a run.* event: nothing of ours
    except webhooks.ProcessingError:
        return "failed"  # stored with its error, for the admin to reprocess
    return receipt.status
