"""What a save of an upload does (``tapestry_media.uploads``): the decision "is this a new file?"
is made from the instance alone, so a save that changes nothing costs no query."""

from __future__ import annotations

import json

import pytest
from django.core import serializers
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tapestry_media.models import Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import enqueued_names

from .helpers import video_upload

pytestmark = pytest.mark.django_db


def statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries]


@pytest.fixture
def sub(django_capture_on_commit_callbacks) -> Submission:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created = Submission.objects.create(file=video_upload())
    assert len(callbacks) == 2  # positive control: a new upload does submit its two tasks
    return created


def test_a_loaded_upload_saved_unchanged_costs_one_update(sub, django_capture_on_commit_callbacks):
    loaded = Submission.objects.get(pk=sub.pk)
    loaded.title = "renamed"
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as cbs:
        loaded.save()
    assert statements(queries) == ["UPDATE"]
    assert cbs == []
    assert Task.objects.count() == 2


def test_the_same_instance_saved_twice_submits_once(django_capture_on_commit_callbacks):
    sub = Submission(file=video_upload())
    with django_capture_on_commit_callbacks(execute=True) as first:
        sub.save()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as cbs:
        sub.save()
    assert len(first) == 2
    assert statements(queries) == ["UPDATE"]
    assert cbs == []


def test_a_deferred_file_column_is_neither_loaded_nor_compared(
    sub, django_capture_on_commit_callbacks
):
    partial = Submission.objects.defer("file").get(pk=sub.pk)
    partial.title = "x"
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as cbs:
        partial.save()
    assert statements(queries) == ["UPDATE"]
    assert cbs == []


def test_a_new_file_on_a_row_loaded_without_its_file_asks_the_database_once(
    sub, django_capture_on_commit_callbacks
):
    partial = Submission.objects.defer("file").get(pk=sub.pk)
    partial.file = video_upload("second.mp4")
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as cbs:
        partial.save()
    assert statements(queries).count("SELECT") == 1
    assert len(cbs) == 2
    assert Submission.objects.get(pk=sub.pk).file_generation == 1


def test_a_file_changed_elsewhere_and_refreshed_is_not_taken_for_a_new_one(
    sub, django_capture_on_commit_callbacks
):
    mine = Submission.objects.get(pk=sub.pk)
    theirs = Submission.objects.get(pk=sub.pk)
    with django_capture_on_commit_callbacks(execute=True) as their_save:
        theirs.file = video_upload("second.mp4")
        theirs.save()
    assert len(their_save) == 2  # control: their new file started generation 1
    mine.refresh_from_db()
    mine.title = "mine"
    with django_capture_on_commit_callbacks() as cbs:
        mine.save()
    assert cbs == []
    assert Submission.objects.get(pk=sub.pk).file_generation == 1


def test_a_new_file_supersedes_tasks_before_it_updates_the_submission(sub) -> None:
    """The webhook path locks a task, then its submission: a new file takes the same order."""
    sub.file = video_upload("second.mp4")
    with CaptureQueriesContext(connection) as queries:
        sub.save()
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    tables = [sql.split()[1].strip('"`') for sql in updates]
    assert tables == ["tapestry_media_task", "tapestry_media_submission"], updates
    assert set(sub.tasks.filter(generation=0).values_list("status", flat=True)) == {
        Status.SUPERSEDED
    }


def test_a_raw_fixture_load_submits_nothing(django_capture_on_commit_callbacks) -> None:
    fixture = json.dumps(
        [
            {
                "model": "tapestry_media.submission",
                "pk": 4242,
                "fields": {
                    "public_id": "sub_fixture",
                    "file": "tapestry_media/uploads/x/a.mp4",
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z",
                },
            }
        ]
    )
    with django_capture_on_commit_callbacks() as cbs:
        for obj in serializers.deserialize("json", fixture):
            obj.save()  # raw=True, as loaddata saves
    assert Submission.objects.filter(pk=4242).exists()
    assert cbs == []
    assert Task.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True) as control:
        for obj in serializers.deserialize("json", fixture):
            obj.object.save()  # the same row saved normally is an upload
    assert len(control) == 2
    assert enqueued_names() == ["submit_task", "submit_task"]
