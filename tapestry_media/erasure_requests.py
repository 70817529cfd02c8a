"""Pending erasures (:class:`.models.ErasureRequest`): the record that an erasure was asked
for, written before its job is queued, so that neither a failed enqueue nor a worker that died
mid-job loses it. ``resync`` queues the job again for every request not queued yet or queued
longer than ``STALE_AFTER`` ago; the erasure deletes the request in its own transaction
(:func:`.erasure.erase`), so a finished erasure leaves no row naming the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from .enqueue import enqueue_erase
from .models import ErasureRequest

BATCH_SIZE = 200


def alias() -> str:
    return router.db_for_write(ErasureRequest)


def request(user_pks: Iterable[str], *, queued: list[bool] | None = None) -> list[str]:
    """Record an erasure request per user (one row per user, however often asked), then,
    once that commits, queue each one's job. ``queued`` gets each enqueue's outcome as the
    callbacks run (after this returns, or when an outer transaction commits)."""
    using = alias()
    pks = sorted(set(user_pks))
    with transaction.atomic(using=using):
        for pk in pks:
            ErasureRequest.objects.using(using).get_or_create(user_pk=pk)
            transaction.on_commit(partial(_enqueue_into, queued, pk), using=using)
    return pks


def enqueue(user_pk: str) -> bool:
    """Queue the erase job; stamp the request when the task backend took it. On failure the
    request keeps its stamp (NULL if never queued) and ``resync`` queues it again."""
    if enqueue_erase(user_pk) is None:
        return False
    # the job may have run and deleted the request already (an immediate backend): 0 rows
    ErasureRequest.objects.using(alias()).filter(user_pk=user_pk).update(enqueued_at=timezone.now())
    return True


def requeue_stale(cutoff: datetime) -> list[bool]:
    """``resync``'s part: claim (``SKIP LOCKED``, stamped, like the tasks) the requests never
    queued or queued before ``cutoff``, and queue each one's job again. One outcome per job."""
    outcomes: list[bool] = []
    failed: list[str] = []
    while batch := _claim(cutoff):
        for pk in batch:
            outcomes.append(enqueue_erase(pk) is not None)
            if not outcomes[-1]:
                failed.append(pk)
    # unstamped again, so the next resync takes them at once (not in this loop: the broker
    # that just refused them would make it spin)
    ErasureRequest.objects.using(alias()).filter(user_pk__in=failed).update(enqueued_at=None)
    return outcomes


def _claim(cutoff: datetime) -> Sequence[str]:
    using = alias()
    stale = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    with transaction.atomic(using=using):
        rows = ErasureRequest.objects.using(using).filter(stale).select_for_update(skip_locked=True)
        claimed = list(rows.order_by("pk").values_list("pk", "user_pk")[:BATCH_SIZE])
        ErasureRequest.objects.using(using).filter(pk__in=[pk for pk, _ in claimed]).update(
            enqueued_at=timezone.now()
        )
    return [user_pk for _, user_pk in claimed]


def _enqueue_into(queued: list[bool] | None, user_pk: str) -> None:
    ok = enqueue(user_pk)
    if queued is not None:
        queued.append(ok)
