"""Retrying a transaction that lost a lock conflict (a deadlock or a serialization failure).

The result path locks rows in one order everywhere (task, then submission), so a conflict
should not happen; if one does (a host's own transaction taking the rows in another order, an
InnoDB gap lock), the database has rolled the whole transaction back and running it again is
safe. Anything else propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, transaction

logger = logging.getLogger("tapestry_media.database")

T = TypeVar("T")

#: SQLSTATEs of PostgreSQL's serialization_failure and deadlock_detected.
_CONFLICT_STATES = frozenset({"40001", "40P01"})
#: MySQL/MariaDB error codes: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
_CONFLICT_CODES = frozenset({1213, 1205})

ATTEMPTS = 4


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (a Django database error) is a deadlock or a serialization failure."""
    cause = exc.__cause__ or exc
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _CONFLICT_STATES:
        return True
    args: tuple[object, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] in _CONFLICT_CODES


def retry_on_conflict(run: Callable[[], T], *, alias: str, attempts: int = ATTEMPTS) -> T:
    """Run ``run`` (which opens its own transaction on ``alias``) again, after a short pause,
    when it fails with a lock conflict; at most ``attempts`` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except OperationalError as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            if transaction.get_connection(alias).in_atomic_block:
                raise  # the caller's transaction is gone too: only it can start again
            logger.warning("lock conflict (%s); running the transaction again", exc)
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
