"""The statements of the result path (a delivery → its event row → the task → the submission),
as SQL written once per database connection.

A first webhook delivery runs six statements, and building one through the ORM costs more CPU
than the database needs to run it (docs/performance.md). On PostgreSQL and SQLite (3.35 or
later, for ``RETURNING``) these functions run plain SQL built from the models' own table and
column names, with the fields' own conversions (``get_db_prep_save`` on the way in, the
database converters on the way out). On any other database they make the equivalent ORM call.
The test suite runs the webhook, reconcile and aggregate tests both ways (tests/conftest.py);
``tests/test_statements.py`` compares the two column by column.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Field
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from .models import Submission, Task, WebhookEvent

#: Take the ORM path on every database (the tests set it to compare both paths).
FORCE_ORM = False

#: The event columns :func:`insert_event` writes, besides the matched task.
EVENT_COLUMNS = (
    "dedup_key",
    "event_id",
    "topic",
    "source",
    "remote_task_id",
    "raw_status",
    "body",
    "headers",
    "signature_scheme",
    "first_received_at",
    "last_received_at",
    "delivery_count",
    "processed_at",
    "error",
)

_TASK_FIELDS: dict[str, Field[Any, Any]] = {f.name: f for f in Task._meta.concrete_fields}

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@dataclass
class _Compiled:
    """The SQL text for one connection (quoting and row locks differ by database), and the
    converters of a task row (bound to the connection on SQLite)."""

    insert_event: dict[bool, str]
    count_repeat: str
    lock_task: dict[tuple[str, bool], str]
    lock_submission: str
    steps: str
    update_submission: str
    task_fields: list[Field[Any, Any]]
    task_converters: list[tuple[int, list[Converter], Any]]
    update_task: dict[tuple[str, ...], str] = field(default_factory=dict)


#: Where a connection keeps its :class:`_Compiled` (one per connection object, so per thread).
_CACHE = "_tapestry_media_statements"


def connection_for(model: type[Any]) -> BaseDatabaseWrapper:
    return connections[router.db_for_write(model)]


def uses_sql(connection: BaseDatabaseWrapper) -> bool:
    if FORCE_ORM:
        return False
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":  # RETURNING needs SQLite 3.35 (Django 5.2 allows 3.31)
        version: tuple[int, ...] = connection.Database.sqlite_version_info  # type: ignore[attr-defined]
        return version >= (3, 35)
    return False


def _sql(connection: BaseDatabaseWrapper) -> _Compiled | None:
    if not uses_sql(connection):
        return None
    compiled: _Compiled | None = getattr(connection, _CACHE, None)
    if compiled is None:
        compiled = _compile(connection)
        setattr(connection, _CACHE, compiled)
    return compiled


def _compile(connection: BaseDatabaseWrapper) -> _Compiled:
    q = connection.ops.quote_name
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    event, task, sub = (q(m._meta.db_table) for m in (WebhookEvent, Task, Submission))
    ecol = {f.attname: q(str(f.column)) for f in WebhookEvent._meta.concrete_fields}
    tcol = {f.attname: q(str(f.column)) for f in Task._meta.concrete_fields}
    scol = {f.attname: q(str(f.column)) for f in Submission._meta.concrete_fields}
    task_fields = list(Task._meta.concrete_fields)
    select_task = ", ".join(tcol[f.attname] for f in task_fields)
    placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
    # ``scoped``: the statement also takes a backend, and matches only that backend's tasks.
    only = {False: "", True: f" AND {tcol['backend']} = %s"}
    match = {
        scoped: (
            f"COALESCE((SELECT {tcol['id']} FROM {task} WHERE {tcol['remote_id']} = %s"
            f"{only[scoped]} LIMIT 1), "
            f"(SELECT {tcol['id']} FROM {task} WHERE {tcol['uuid']} = %s{only[scoped]}))"
        )
        for scoped in (False, True)
    }
    converters = []
    for index, task_field in enumerate(task_fields):
        col = task_field.get_col(Task._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    return _Compiled(
        insert_event={
            scoped: (
                f"INSERT INTO {event} ({', '.join(ecol[c] for c in EVENT_COLUMNS)}, "
                f"{ecol['task_id']}) VALUES ({placeholders}, {match[scoped]}) "
                f"ON CONFLICT ({ecol['dedup_key']}) DO NOTHING "
                f"RETURNING {ecol['id']}, {ecol['task_id']}"
            )
            for scoped in (False, True)
        },
        count_repeat=(
            f"UPDATE {event} SET {ecol['delivery_count']} = {ecol['delivery_count']} + 1, "
            f"{ecol['last_received_at']} = %s "
            f"WHERE {ecol['dedup_key']} = %s AND {ecol['error']} = ''"
        ),
        lock_task={
            (lookup, scoped): f"SELECT {select_task} FROM {task} WHERE {tcol[lookup]} = %s"
            f"{only[scoped]} LIMIT 1{for_update}"
            for lookup in ("id", "remote_id", "uuid")
            for scoped in (False, True)
        },
        lock_submission=(
            f"SELECT {scol['status']}, {scol['file_generation']} FROM {sub} "
            f"WHERE {scol['id']} = %s{for_update}"
        ),
        steps=(
            f"SELECT {tcol['is_primary']}, {tcol['status']} FROM {task} "
            f"WHERE {tcol['submission_id']} = %s AND {tcol['generation']} = %s"
        ),
        update_submission=(
            f"UPDATE {sub} SET {scol['status']} = %s, {scol['processed_at']} = %s, "
            f"{scol['updated_at']} = %s WHERE {scol['id']} = %s "
            f"AND {scol['file_generation']} = %s AND NOT ({scol['status']} = %s)"
        ),
        task_fields=task_fields,
        task_converters=converters,
    )


def _prep(model: type[Any], name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    return model._meta.get_field(name).get_db_prep_save(value, connection)


# --- the event row -------------------------------------------------------------------------------


def insert_event(
    values: Mapping[str, Any],
    *,
    remote_id: str,
    correlation: uuid.UUID | None,
    backend: str | None = None,
) -> tuple[int, int | None] | None:
    """Insert a new event, matched to the task with ``remote_id`` (else the one whose
    correlation key is ``correlation``), among the tasks of ``backend`` when one is given.
    Returns ``(event pk, task pk or None)``, or ``None`` when an event with the same dedup key
    exists. Call inside a transaction."""
    connection = connection_for(WebhookEvent)
    sql = _sql(connection)
    if sql is None:
        return _insert_event_orm(
            values, remote_id=remote_id, correlation=correlation, backend=backend
        )
    only = [] if backend is None else [backend]
    params = [_prep(WebhookEvent, c, values[c], connection) for c in EVENT_COLUMNS]
    params += [remote_id, *only, _prep(Task, "uuid", correlation, connection), *only]
    with connection.cursor() as cursor:
        cursor.execute(sql.insert_event[backend is not None], params)
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def _insert_event_orm(
    values: Mapping[str, Any],
    *,
    remote_id: str,
    correlation: uuid.UUID | None,
    backend: str | None,
) -> tuple[int, int | None] | None:
    tasks = Task.objects.all() if backend is None else Task.objects.filter(backend=backend)
    task_pk = tasks.filter(remote_id=remote_id).order_by().values_list("pk", flat=True)
    found = next(iter(task_pk[:1]), None)
    if found is None and correlation is not None:
        found = tasks.filter(uuid=correlation).values_list("pk", flat=True).first()
    try:
        with transaction.atomic(using=router.db_for_write(WebhookEvent)):
            event = WebhookEvent.objects.create(**values, task_id=found)
    except IntegrityError:
        return None
    return event.pk, found


def count_repeat(dedup_key: str, now: datetime) -> bool:
    """Count one more delivery of a known event that was processed (no error). Returns
    whether one was counted."""
    connection = connection_for(WebhookEvent)
    sql = _sql(connection)
    if sql is None:
        rows = WebhookEvent.objects.filter(dedup_key=dedup_key, error="")
        return bool(rows.update(delivery_count=F("delivery_count") + 1, last_received_at=now))
    with connection.cursor() as cursor:
        cursor.execute(
            sql.count_repeat, [_prep(WebhookEvent, "last_received_at", now, connection), dedup_key]
        )
        return bool(cursor.rowcount)


# --- the task ---------------------------------------------------------------------------------


def lock_task(
    lookup: str, value: int | str | uuid.UUID, *, backend: str | None = None
) -> Task | None:
    """The task whose ``lookup`` (``id``, ``remote_id`` or ``uuid``; each unique) is ``value``
    (and whose ``backend`` is ``backend``, when one is given), locked for the rest of the
    transaction where the database has row locks."""
    connection = connection_for(Task)
    sql = _sql(connection)
    only = {} if backend is None else {"backend": backend}
    if sql is None:
        rows = Task.objects.select_for_update().filter(**{lookup: value}, **only).order_by()
        return next(iter(rows[:1]), None)
    if lookup == "uuid":
        value = _prep(Task, "uuid", value, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql.lock_task[lookup, backend is not None], [value, *only.values()])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, converters, col in sql.task_converters:
        for convert in converters:
            values[index] = convert(values[index], col, connection)
    return Task.from_db(connection.alias, [f.attname for f in sql.task_fields], values)


def save_task(task: Task, fields: Sequence[str]) -> None:
    """Store ``fields`` of ``task`` and its ``updated_at``. Through ``Task.save`` when the
    host listens to the model's ``pre_save``/``post_save`` signals, so those still fire."""
    connection = connection_for(Task)
    sql = _sql(connection)
    if sql is None or pre_save.has_listeners(Task) or post_save.has_listeners(Task):
        task.save(update_fields=[*fields, "updated_at"])
        return
    task.updated_at = timezone.now()
    names = tuple(dict.fromkeys((*fields, "updated_at")))  # a field may be listed twice
    statement = sql.update_task.get(names)
    if statement is None:
        q = connection.ops.quote_name
        assignments = ", ".join(f"{q(str(_TASK_FIELDS[name].column))} = %s" for name in names)
        statement = sql.update_task[names] = (
            f"UPDATE {q(Task._meta.db_table)} SET {assignments} WHERE {q('id')} = %s"
        )
    params = [
        _TASK_FIELDS[name].get_db_prep_save(getattr(task, name), connection) for name in names
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, task.pk])


# --- the submission ---------------------------------------------------------------------------


def lock_submission(submission_id: int) -> tuple[str, int] | None:
    """``(status, file_generation)`` of the submission, locked, where the database has row
    locks; ``None`` where it has none (writers are serialised there)."""
    connection = connection_for(Submission)
    if not connection.features.has_select_for_update:
        return None
    sql = _sql(connection)
    if sql is None:
        rows = (
            Submission.objects.select_for_update()
            .filter(pk=submission_id)
            .order_by()
            .values_list("status", "file_generation")
        )
        return next(iter(rows), None)
    with connection.cursor() as cursor:
        cursor.execute(sql.lock_submission, [submission_id])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def steps(submission_id: int, generation: int) -> list[tuple[bool, str]]:
    """``(is_primary, status)`` of each task of the submission's ``generation``."""
    connection = connection_for(Task)
    sql = _sql(connection)
    if sql is None:
        rows = Task.objects.filter(submission_id=submission_id, generation=generation)
        return list(rows.order_by().values_list("is_primary", "status"))
    with connection.cursor() as cursor:
        cursor.execute(sql.steps, [submission_id, generation])
        return [(bool(primary), status) for primary, status in cursor.fetchall()]


def update_submission(submission_id: int, generation: int, status: str, *, done: bool) -> int:
    """Store the aggregate ``status`` (and, when ``done``, the time it was reached) unless it
    is already stored or ``generation`` is no longer the submission's current file. Returns
    the number of rows changed (0 or 1)."""
    now = timezone.now()
    processed_at = now if done else None
    connection = connection_for(Submission)
    sql = _sql(connection)
    if sql is None:
        return (
            Submission.objects.filter(pk=submission_id, file_generation=generation)
            .exclude(status=status)
            .update(status=status, processed_at=processed_at, updated_at=now)
        )
    stamp = Submission._meta.get_field("updated_at")
    params = [
        status,
        stamp.get_db_prep_save(processed_at, connection),
        stamp.get_db_prep_save(now, connection),
        submission_id,
        generation,
        status,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql.update_submission, params)
        return int(cursor.rowcount)
