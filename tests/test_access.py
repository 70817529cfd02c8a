"""Who reads which rows and who may name which inputs (issue 11, item 6): the view permissions
read everything, ``is_staff`` alone only one's own rows; inputs other than one's own uploads
need ``tapestry_media.submit_any_input``."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tapestry_media.models import Submission, Task

from .helpers import client_for, grant, video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network", "fresh_throttles")]

TASKS = reverse("tapestry_media:task-list")
SUBMISSIONS = reverse("tapestry_media:submission-list")


@pytest.fixture
def staff(django_user_model) -> Any:
    return django_user_model.objects.create_user("staff", password="pw", is_staff=True)


@pytest.fixture
def theirs(other_user) -> Submission:
    return Submission.objects.create(uploader=other_user, file=video_upload())


def fresh(user: Any) -> Any:
    """The user as the next request loads it (Django caches permissions on the instance)."""
    return type(user).objects.get(pk=user.pk)


def _task_of(sub: Submission) -> Task:
    return sub.tasks.get(name="video")


READS = {
    "submission detail": lambda s: reverse("tapestry_media:submission-detail", args=[s.public_id]),
    "task detail": lambda s: reverse("tapestry_media:task-detail", args=[_task_of(s).uuid]),
}
PERMISSION = {"submission detail": "view_submission", "task detail": "view_task"}


@pytest.mark.parametrize("case", sorted(READS))
def test_staff_alone_cannot_read_others_rows(staff, theirs, case) -> None:
    response = client_for(staff).get(READS[case](theirs))
    assert response.status_code == 404


@pytest.mark.parametrize("case", sorted(READS))
def test_the_view_permission_reads_others_rows(staff, theirs, case) -> None:
    grant(staff, PERMISSION[case])
    response = client_for(fresh(staff)).get(READS[case](theirs))
    assert response.status_code == 200


@pytest.mark.parametrize("case", sorted(READS))
def test_the_permission_works_without_is_staff(django_user_model, theirs, case) -> None:
    auditor = django_user_model.objects.create_user("auditor", password="pw")
    grant(auditor, PERMISSION[case])
    assert client_for(fresh(auditor)).get(READS[case](theirs)).status_code == 200


@pytest.mark.parametrize("case", sorted(READS))
def test_staff_read_their_own_rows(staff, case) -> None:
    mine = Submission.objects.create(uploader=staff, file=video_upload())
    assert client_for(staff).get(READS[case](mine)).status_code == 200


@pytest.mark.parametrize(
    ("url", "permission", "rows"),
    [(SUBMISSIONS, "view_submission", 1), (TASKS, "view_task", 2)],
)
def test_lists_need_the_view_permission_for_others_rows(staff, theirs, url, permission, rows):
    mine = Submission.objects.create(uploader=staff, file=video_upload())
    listed = client_for(staff).get(url).json()["results"]
    assert len(listed) == rows  # own rows only: one submission, its two tasks
    owners = {r.get("submission", r["id"]) for r in listed}
    assert owners == {mine.public_id}
    grant(staff, permission)
    assert len(client_for(fresh(staff)).get(url).json()["results"]) == 2 * rows


INPUTS = {
    "a URL": lambda s: "https://example.com/x.mov",
    "a storage path": lambda s: "tapestry_media/uploads/anything.mp4",
    "another user's submission id": lambda s: s.public_id,
    "another user's file name": lambda s: s.file.name,
}


@pytest.mark.parametrize("case", sorted(INPUTS))
def test_other_inputs_are_refused_without_submit_any_input(staff, theirs, case) -> None:
    grant(staff, "view_submission", "view_task")  # seeing a submission is not using it
    before = Task.objects.count()
    response = client_for(fresh(staff)).post(
        TASKS, {"input": INPUTS[case](theirs), "kind": "video"}, format="json"
    )
    assert response.status_code == 400
    assert "must be one of your submissions" in response.json()["error"]["fields"]["input"][0]
    assert Task.objects.count() == before


@pytest.mark.parametrize("case", sorted(INPUTS))
def test_other_inputs_are_taken_with_submit_any_input(django_user_model, theirs, case) -> None:
    operator = django_user_model.objects.create_user("operator", password="pw")
    grant(operator, "submit_any_input")
    response = client_for(fresh(operator)).post(
        TASKS, {"input": INPUTS[case](theirs), "kind": "video", "step": "extra"}, format="json"
    )
    assert response.status_code == 201, response.json()
    task = Task.objects.get(uuid=response.json()["id"])
    assert task.created_by == operator
    if case.startswith("another user's"):
        assert task.submission == theirs


def test_own_upload_needs_no_permission(user) -> None:
    mine = Submission.objects.create(uploader=user, file=video_upload())
    response = client_for(user).post(
        TASKS, {"input": mine.public_id, "kind": "audio", "step": "soundtrack"}, format="json"
    )
    assert response.status_code == 201
    assert Task.objects.get(uuid=response.json()["id"]).submission == mine
