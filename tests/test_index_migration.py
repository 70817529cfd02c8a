"""Migration 0007 drops the indexes no query of the app uses (docs/performance.md, the index
audit), 0009 leads the remote-id index with ``remote_id``, 0010 gives task pages more room,
0011 indexes a submission's file name; each is reversed too, on whichever database the suite
runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

TABLES = ("tapestry_media_task", "tapestry_media_submission", "tapestry_media_webhookevent")
BEFORE = ("tapestry_media", "0006_event_cursor")
AFTER = ("tapestry_media", "0007_drop_unused_indexes")
T = TypeVar("T")
#: What every database loses (the model state's indexes); PostgreSQL its ``_like`` copies too.
STATE_INDEXES = {
    "tapestry_media_task_status_e3915414",
    "tapestry_media_task_updated_at_0aa94e33",
    "tapestry_task_stale_idx",
    "tapestry_media_submission_status_bb40512f",
    "tapestry_media_submission_source_9c242c89",
}
#: What stays where the database has it: each serves a query (docs/performance.md lists which).
KEPT = {
    "tapestry_media_task_submission_id_69f023a4",
    "tapestry_media_submission_campaign_364d3a57",
    "tapestry_media_submission_created_at_b19c6ca5",
    "tapestry_media_webhookevent_remote_task_id_d5c79192",
    "tapestry_event_received_idx",
    "tapestry_event_unmatched_idx",
}


def indexes() -> set[str]:
    with connection.cursor() as cursor:
        return {
            name
            for table in TABLES
            for name, info in connection.introspection.get_constraints(cursor, table).items()
            if info["index"] and not info["primary_key"] and not info["unique"]
        }


def fillfactors() -> dict[str, str | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, array_to_string(reloptions, ',') FROM pg_class "
            "WHERE relname IN ('tapestry_media_task', 'tapestry_media_submission')"
        )
        return dict(cursor.fetchall())


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_0007_drops_the_unused_indexes_and_reverses() -> None:
    latest = indexes()
    postgresql = connection.vendor == "postgresql"
    try:
        migrate(BEFORE)
        before = indexes()
        storage_before = fillfactors() if postgresql else {}
        migrate(AFTER)
        after = indexes()
        storage_after = fillfactors() if postgresql else {}
    finally:  # the rest of the suite runs on the latest schema
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("tapestry_media"))
    expected = set(STATE_INDEXES)
    if postgresql:
        assert storage_before == {"tapestry_media_task": None, "tapestry_media_submission": None}
        assert storage_after == {
            "tapestry_media_task": "fillfactor=70",
            "tapestry_media_submission": "fillfactor=90",
        }
        migration = importlib.import_module("tapestry_media.migrations.0007_drop_unused_indexes")
        expected = set(migration.POSTGRESQL_DROPPED)
        assert {n for n in expected if n.endswith("_like")}, "PostgreSQL drops the _like copies"
    assert expected >= STATE_INDEXES
    assert before - after == expected
    assert after - before == set()
    kept = KEPT & before  # MySQL/MariaDB make no index of their own for a foreign key
    assert len(kept) >= 4
    assert after >= kept
    assert indexes() == latest


def readings(read: Callable[[], T], *targets: tuple[str, str]) -> list[T]:
    """``read()`` after migrating to each of ``targets`` in turn; then back to the latest
    schema, which the rest of the suite runs on."""
    found = []
    try:
        for target in targets:
            migrate(target)
            found.append(read())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("tapestry_media"))
    return found


def indexes_over(table: str, column: str, *, kind: str = "index") -> dict[str, list[str]]:
    """``table``'s indexes (``kind="unique"``: unique ones) over ``column``: name -> columns,
    in index order."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        name: info["columns"]
        for name, info in found.items()
        if info[kind] and column in info["columns"]
    }


def remote_id_indexes() -> dict[str, list[str]]:
    return indexes_over("tapestry_media_task", "remote_id", kind="unique")


@pytest.mark.vendors("sqlite", "postgresql")  # MySQL/MariaDB: no partial unique index, no change
@pytest.mark.django_db(transaction=True)
def test_0009_leads_the_remote_id_index_with_remote_id_and_reverses() -> None:
    """An unscoped result is matched by ``remote_id`` alone: an index led by ``backend`` made
    PostgreSQL walk it up to the match on every delivery (docs/performance.md)."""
    latest = remote_id_indexes()
    before, after = readings(
        remote_id_indexes,
        ("tapestry_media", "0008_task_created_index"),
        ("tapestry_media", "0009_task_remote_id_first"),
    )
    assert before == {"tapestry_media_task_remote_id": ["backend", "remote_id"]}
    assert after == {"tapestry_media_task_remote_id_backend": ["remote_id", "backend"]}
    assert remote_id_indexes() == latest == after


@pytest.mark.vendors("postgresql")  # fillfactor is PostgreSQL's
@pytest.mark.django_db(transaction=True)
def test_0010_gives_task_pages_more_room_and_reverses() -> None:
    before, after = readings(
        fillfactors,
        ("tapestry_media", "0009_task_remote_id_first"),
        ("tapestry_media", "0010_task_fillfactor_60"),
    )
    assert before["tapestry_media_task"] == "fillfactor=70"
    assert after == {
        "tapestry_media_task": "fillfactor=60",
        "tapestry_media_submission": "fillfactor=90",
    }


def file_indexes() -> dict[str, list[str]]:
    return indexes_over("tapestry_media_submission", "file")


@pytest.mark.django_db(transaction=True)
def test_0011_indexes_the_file_name_and_reverses() -> None:
    """The API's task input by file name (``own_submission``) read the whole table."""
    before, after, reversed_ = readings(
        file_indexes,
        ("tapestry_media", "0010_task_fillfactor_60"),
        ("tapestry_media", "0011_submission_file_index"),
        ("tapestry_media", "0010_task_fillfactor_60"),
    )
    assert before == reversed_ == {}
    assert after == {"tapestry_submission_file_idx": ["file"]}
    assert file_indexes() == after
