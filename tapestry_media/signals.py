"""Signals for host projects. Every one but ``task_pre_submit`` is sent after commit, through
``send_robust``: a receiver that raises is logged and never undoes or loses the change.

``task_pre_submit(sender=Task, task, metadata, submission)``
    Sent while a task row is being built, inside the saving transaction, before it is stored.
    ``task`` is the unsaved Task, ``metadata`` a mutable dict (add keys to it; the server-owned
    keys are re-applied afterwards), ``submission`` the Submission or ``None``. Raise
    :class:`SubmitVetoed` to skip the task: no row is created for that step.

``task_submitted(sender=Task, task)``
    The API accepted the task: ``task.remote_id`` is set.

``task_updated(sender=Task, task, previous_status, source)``
    A result changed the task (status, progress, output or error). ``source`` is "webhook",
    "local", "poll" or "submit".

``task_succeeded(sender=Task, task)`` / ``task_failed(sender=Task, task, error)``
    The task reached that terminal state (sent once, after ``task_updated``). ``task_failed``
    is also sent for a cancelled task (``task.status`` tells which). ``error`` is a dict
    ``{"kind", "message"}`` (for a cancel without a reason, ``kind`` is the raw status).

``submission_processed(sender=Submission, submission, status)``
    The submission reached a final aggregate ``status``: "ready" or "partial" once every current
    task is terminal, "failed" as soon as its primary step fails or is cancelled (other steps
    may still be running then).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import router, transaction
from django.db.models import Model
from django.dispatch import Signal

logger = logging.getLogger("tapestry_media.signals")

task_pre_submit = Signal()
task_submitted = Signal()
task_updated = Signal()
task_succeeded = Signal()
task_failed = Signal()
submission_processed = Signal()


class SubmitVetoed(Exception):
    """Raised by a ``task_pre_submit`` receiver to skip a task."""


def send_after_commit(signal: Signal, sender: type[Model], **kwargs: Any) -> None:
    """Send once the transaction on ``sender``'s database (as the router gives it) commits."""
    using = router.db_for_write(sender)
    transaction.on_commit(lambda: send_now(signal, sender, **kwargs), using=using)


def send_now(signal: Signal, sender: type, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "tapestry_media signal receiver %r raised",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )
