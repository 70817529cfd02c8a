"""What one submit job costs a worker beyond the API's own latency (issue 14, item 5): a bounded
number of SQL statements, and one kept-alive HTTP connection per worker process for every
create (docs/performance.md, "Submit jobs: where a worker's time goes")."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tapestry_media.jobs import submit_task
from tapestry_media.models import Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import run_jobs

from .helpers import upload

pytestmark = pytest.mark.django_db

#: Transaction control, which the databases report differently (PostgreSQL's BEGIN/COMMIT,
#: savepoints inside the test's transaction, nothing at all on SQLite).
_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)", re.IGNORECASE)

#: One submit job on a task that is due, with no early result waiting for it:
#: claim (UPDATE, then SELECT the row for the spec); merge the reply in one transaction
#: (the task locked, then updated; submitting -> pending leaves the submission alone,
#: ``aggregate.may_change``); results that arrived before the remote id (one indexed SELECT).
SUBMIT_STATEMENTS = 5


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not _CONTROL.match(q["sql"])]


def _summary(sqls: list[str]) -> list[str]:
    """``UPDATE tapestry_media_task``, ``SELECT tapestry_media_submission``, … per statement."""
    out = []
    for sql in sqls:
        verb = sql.split()[0].upper()
        table = re.search(r'(?:FROM|UPDATE|INTO)\s+["`]?(\w+)', sql, re.IGNORECASE)
        out.append(f"{verb} {table.group(1) if table else '?'}")
    return out


def test_one_submit_job_makes_a_bounded_number_of_statements() -> None:
    sub = upload()
    task = sub.tasks.order_by("pk").first()
    assert task is not None
    with CaptureQueriesContext(connection) as queries:
        outcome = submit_task.call(task.pk)
    task.refresh_from_db()
    # Positive control: the job did the whole submit, not an early exit.
    assert outcome == "submitted"
    assert task.status == Status.PENDING
    assert task.remote_id
    statements = _summary(_statements(queries))
    assert len(statements) == SUBMIT_STATEMENTS, statements
    # submitting -> pending cannot change the submission's status: no lock on it, no steps read
    assert not any("submission" in s for s in statements), statements
    # The claim is one UPDATE and one read; nothing is read twice before the API call.
    assert statements[:2] == ["UPDATE tapestry_media_task", "SELECT tapestry_media_task"]
    assert statements.count("SELECT tapestry_media_webhookevent") == 1, statements


def test_a_job_that_finds_its_task_taken_stops_after_two_reads() -> None:
    """A duplicate delivery (a broker's redelivery, resync beside a lost job) is cheap."""
    sub = upload()
    task = sub.tasks.order_by("pk").first()
    assert task is not None
    assert submit_task.call(task.pk) == "submitted"
    with CaptureQueriesContext(connection) as queries:
        outcome = submit_task.call(task.pk)
    assert outcome == "skipped"
    # the claim's UPDATE (matching nothing) and the look at why (after_lost_claim)
    assert _summary(_statements(queries)) == [
        "UPDATE tapestry_media_task",
        "SELECT tapestry_media_task",
    ]


def test_every_create_of_a_worker_goes_over_one_kept_alive_connection(
    cloud, django_capture_on_commit_callbacks
) -> None:
    """The backend instance, and its pooled session, outlive a job: a worker does not open a
    connection to the API per create."""
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            upload()
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    creates = [r for r in cloud.requests if r.method == "POST"]
    assert len(creates) == 6  # positive control: every task was created over HTTP
    assert Task.objects.filter(status=Status.PENDING).count() == 6
    assert len({r.client for r in creates}) == 1, [r.client for r in creates]
