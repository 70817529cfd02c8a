"""The task input of ``POST /tasks/`` names a submission by public id or stored file name
(``api.views.own_submission``): which one, whose, and through which index."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tapestry_media.api.views import own_submission
from tapestry_media.models import Submission

from .helpers import upload, video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network")]

FILE_INDEX = "tapestry_submission_file_idx"
PUBLIC_ID_INDEX = "tapestry_media_submission_public_id_key"


def test_own_upload_by_public_id_or_file_name(user) -> None:
    mine = upload(user, file=video_upload("mine.mp4"))
    upload(user, file=video_upload("other.mp4"))
    assert mine.file.name.endswith("/mine.mp4")
    assert own_submission(user, mine.public_id, any_input=False) == mine
    assert own_submission(user, mine.file.name, any_input=False) == mine
    assert own_submission(user, "mine.mp4", any_input=False) is None  # the stored name, whole
    assert own_submission(user, "sub_0000000000000000", any_input=False) is None


def test_another_users_upload_is_refused_without_submit_any_input(user, other_user) -> None:
    theirs = upload(other_user)
    for value in (theirs.public_id, theirs.file.name):
        assert own_submission(user, value, any_input=False) is None
        assert own_submission(user, value, any_input=True) == theirs


def test_a_public_id_wins_over_a_file_name_and_the_newest_of_one_file_name(user) -> None:
    """Only a name set by hand can equal a public id (the app's names have a folder). The
    lookup before migration 0011 took the newest of both matches: here ``named``."""
    first, named, again = (upload(user) for _ in range(3))
    Submission.objects.filter(pk=named.pk).update(file=first.public_id)
    assert own_submission(user, first.public_id, any_input=False) == first
    Submission.objects.filter(pk=again.pk).update(file=first.public_id)
    latest = Submission.objects.filter(file=first.public_id).latest("created_at", "pk")
    assert latest == again
    Submission.objects.filter(pk=first.pk).update(public_id="sub_renamed")
    assert own_submission(user, first.public_id, any_input=False) == again


def plans(run) -> list[str]:
    """EXPLAIN of every statement ``run()`` sends, on fresh statistics, sequential scans priced
    out: a plan that still has one has no index to use for the statement's condition."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE tapestry_media_submission")
        cursor.execute("SET LOCAL enable_seqscan = off")
        with CaptureQueriesContext(connection) as queries:
            run()
        found = []
        for query in queries.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            found.append("\n".join(row[0] for row in cursor.fetchall()))
    return found


@pytest.mark.vendors("postgresql")
@pytest.mark.parametrize("any_input", [False, True])
def test_the_lookup_is_served_by_the_public_id_and_file_indexes(user, any_input) -> None:
    """The table is too small here for the planner to choose an index on its own (it does at
    20k rows: docs/performance.md, "The task input lookup"); with sequential scans priced out
    each statement names its index, and without the file index the file lookup had none
    (with ``submit_any_input``: no uploader filter to fall back on)."""
    mine = upload(user)
    for _ in range(3):
        upload(user)
    by_id = plans(lambda: own_submission(user, mine.public_id, any_input=any_input))
    assert len(by_id) == 1
    assert PUBLIC_ID_INDEX in by_id[0], by_id[0]
    by_name = plans(lambda: own_submission(user, mine.file.name, any_input=any_input))
    assert len(by_name) == 2  # the public id first, then the file name
    assert PUBLIC_ID_INDEX in by_name[0], by_name[0]
    assert FILE_INDEX in by_name[1], by_name[1]
    for plan in by_id + by_name:
        assert "Seq Scan" not in plan, plan
