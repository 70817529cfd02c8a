"""The submissions and tasks API: uploads, ownership, server-owned metadata, filters."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media import pipeline
from tapestry_media.models import Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import enqueued_names

from .helpers import grant, upload, video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network", "fresh_throttles")]

SUBMISSIONS = reverse("tapestry_media:submission-list")
TASKS = reverse("tapestry_media:task-list")


def submission_url(public_id: str) -> str:
    return reverse("tapestry_media:submission-detail", args=[public_id])


def task_url(task: Task) -> str:
    return reverse("tapestry_media:task-detail", args=[task.uuid])


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def other_api(other_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(other_user)
    return client


@pytest.fixture
def staff_api(django_user_model) -> APIClient:
    """Staff who hold the view permissions and ``submit_any_input``."""
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    grant(staff, "view_submission", "view_task", "submit_any_input")
    client = APIClient()
    client.force_authenticate(staff)
    return client


def post_upload(client: APIClient, name: str = "clip.mp4", **data):
    data.setdefault("file", video_upload(name))
    return client.post(SUBMISSIONS, data, format="multipart")


# --- submissions ------------------------------------------------------------------------------


def test_upload_creates_a_submission_and_enqueues_its_steps(
    api, user, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(
            api,
            title="Beach day",
            campaign="summer-launch",
            source="ios",
            metadata=json.dumps({"order_id": "A-1"}),
            **{"metadata[priority]": "high"},
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    sub = Submission.objects.get(public_id=body["id"])
    assert sub.uploader == user
    assert (sub.title, sub.campaign, sub.source) == ("Beach day", "summer-launch", "ios")
    assert sub.metadata == {"order_id": "A-1", "priority": "high"}
    assert body["user_id"] == f"usr_{user.pk}"
    assert [t["step"] for t in body["tasks"]] == ["video", "poster"]
    assert body["status"] == "pending"
    assert body["file_url"].startswith("http://testserver/media/")
    assert enqueued_names() == ["submit_task", "submit_task"]
    video = sub.tasks.get(name="video")
    assert video.metadata["order_id"] == "A-1"
    assert video.metadata["campaign"] == "summer-launch"


def test_client_sent_user_id_is_ignored(api, user, other_user) -> None:
    response = post_upload(
        api,
        metadata=json.dumps(
            {"user_id": f"usr_{other_user.pk}", "submission_id": "sub_forged", "x": "1"}
        ),
        **{"metadata[tapestry_task]": "00000000-0000-0000-0000-000000000000"},
    )
    assert response.status_code == 201, response.json()
    sub = Submission.objects.get(public_id=response.json()["id"])
    assert sub.metadata == {"x": "1"}
    for task in sub.tasks.all():
        assert task.metadata["user_id"] == f"usr_{user.pk}"
        assert task.metadata["submission_id"] == sub.public_id
        assert task.metadata["tapestry_task"] == str(task.uuid)


@pytest.mark.parametrize(
    ("name", "data", "field", "needle"),
    [
        ("virus.exe", {}, "file", "Files of type 'exe' are not accepted"),
        ("noext", {}, "file", "Files of type '(none)' are not accepted"),
        ("clip.mp4", {"metadata": "{not json"}, "metadata", "must be a JSON object"),
        ("clip.mp4", {"metadata": "[1, 2]"}, "metadata", "must be a JSON object"),
        ("clip.mp4", {"metadata": '{"n": 5}'}, "metadata", "must be a string, not int"),
        ("clip.mp4", {"metadata[bad key]": "x"}, "metadata", "is invalid"),
        ("clip.mp4", {"campaign": "a", "metadata": '{"campaign": "b"}'}, "campaign", "differs"),
    ],
)
def test_bad_uploads_get_a_400_with_the_reason(api, name, data, field, needle) -> None:
    response = post_upload(api, name=name, **data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["kind"] == "invalid"
    assert any(needle in message for message in error["fields"][field]), error
    assert error["message"].startswith(f"{field}: ")
    assert Submission.objects.count() == 0


def test_upload_size_limit_comes_from_settings(api, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 10}
    response = post_upload(api)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        "The file is 12\xa0bytes; the limit is 10\xa0bytes."
    ]
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 12}
    assert post_upload(api).status_code == 201  # positive control at the limit


def test_extension_without_a_pipeline_is_refused(api, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "PIPELINE": {"video": []}}
    response = post_upload(api)
    assert response.status_code == 400
    assert "no processing is configured" in response.json()["error"]["message"]


def test_list_shows_only_own_submissions_with_current_tasks(api, user, other_user) -> None:
    mine = upload(user)
    upload(other_user)
    Task.objects.filter(submission=mine, name="video").update(
        status=Status.SUCCEEDED, output_url="https://cdn.example.com/v.mp4"
    )
    body = api.get(SUBMISSIONS).json()
    assert [s["id"] for s in body["results"]] == [mine.public_id]
    assert body["results"][0]["outputs"] == {"video": "https://cdn.example.com/v.mp4"}
    assert body["next"] is None


def test_list_filters_by_status_and_campaign(api, user) -> None:
    a = upload(user, campaign="spring")
    b = upload(user, campaign="autumn")
    Submission.objects.filter(pk=b.pk).update(status="ready")
    assert [s["id"] for s in api.get(SUBMISSIONS, {"campaign": "spring"}).json()["results"]] == [
        a.public_id
    ]
    assert [s["id"] for s in api.get(SUBMISSIONS, {"status": "ready"}).json()["results"]] == [
        b.public_id
    ]
    response = api.get(SUBMISSIONS, {"status": "done"})
    assert response.status_code == 400
    assert "unknown value 'done'" in response.json()["error"]["message"]


def test_list_filters_by_the_metadata_of_current_tasks(api, user) -> None:
    spring = upload(user, metadata={"order_id": "A-1"})
    autumn = upload(user, metadata={"order_id": "A-1"})
    # autumn's file was replaced: its A-1 tasks are an earlier generation and no longer count.
    Submission.objects.filter(pk=autumn.pk).update(file_generation=autumn.file_generation + 1)
    Task.objects.create(
        submission=autumn,
        generation=autumn.file_generation + 1,
        kind="video",
        input="x",
        backend="dummy",
        metadata={"order_id": "B-2"},
    )

    def listed(**params: str) -> list[str]:
        response = api.get(SUBMISSIONS, params)
        assert response.status_code == 200, response.content
        return sorted(s["id"] for s in response.json()["results"])

    assert listed(**{"metadata[order_id]": "A-1"}) == [spring.public_id]
    assert listed(**{"metadata[order_id]": "B-2"}) == [autumn.public_id]
    assert listed(**{"metadata[user_id]": f"usr_{user.pk}"}) == [spring.public_id]
    assert listed(**{"metadata[order_id]": "A-1", "metadata[user_id]": "usr_0"}) == []
    assert listed(**{"metadata[order_id]": "Z-9"}) == []
    assert api.get(SUBMISSIONS, {"metadata[bad key]": "x"}).status_code == 400


def test_detail_shows_the_current_generation_only(api, user) -> None:
    sub = upload(user)
    Task.objects.create(
        submission=sub, generation=9, name="stale", kind="video", input="x", backend="dummy"
    )
    body = api.get(submission_url(sub.public_id)).json()
    assert [t["step"] for t in body["tasks"]] == ["video", "poster"]
    assert body["tasks"][0]["is_primary"] is True


def test_others_submissions_are_404_and_unchangeable(api, other_api, user) -> None:
    sub = upload(user)
    url = submission_url(sub.public_id)
    assert api.get(url).status_code == 200  # positive control
    response = other_api.get(url)
    assert response.status_code == 404
    assert response.json() == {"error": {"kind": "not_found", "message": "Not found."}}
    for method in (other_api.patch, other_api.put, other_api.delete):
        assert method(url, {"title": "mine now"}, format="json").status_code in (404, 405)
    sub.refresh_from_db()
    assert sub.title == ""


def test_staff_see_every_submission(staff_api, user, other_user) -> None:
    upload(user)
    upload(other_user)
    assert len(staff_api.get(SUBMISSIONS).json()["results"]) == 2


def test_anonymous_users_cannot_read_or_create() -> None:
    client = APIClient()
    response = client.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["kind"] == "not_authenticated"
    assert client.get(SUBMISSIONS).status_code in (401, 403)
    assert client.post(TASKS, {"input": "x", "kind": "video"}, format="json").status_code in (
        401,
        403,
    )
    assert Submission.objects.count() == 0
    assert Task.objects.count() == 0


def test_basic_authentication(user) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6cHctYWxpY2U=")  # alice:pw-alice
    assert client.get(SUBMISSIONS).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6d3Jvbmc=")  # alice:wrong
    response = client.get(SUBMISSIONS)
    assert response.status_code == 401
    assert response.json()["error"]["kind"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Basic")


def test_session_writes_need_a_csrf_token(user) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw-alice")
    response = client.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert response.status_code == 403
    assert response.json()["error"]["kind"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]


# --- tasks ------------------------------------------------------------------------------------


def test_create_task_on_own_submission(api, user, django_capture_on_commit_callbacks) -> None:
    sub = upload(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            TASKS,
            {
                "input": sub.public_id,
                "kind": "audio",
                "options": {"format": "mp3"},
                "metadata": {"order_id": "A-9", "user_id": "usr_forged"},
                "step": "soundtrack",
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    task = Task.objects.get(uuid=body["id"])
    assert task.input == sub.file.name
    assert task.submission == sub
    assert task.created_by == user
    assert task.metadata["user_id"] == f"usr_{user.pk}"
    assert task.metadata["submission_id"] == sub.public_id
    assert task.metadata["order_id"] == "A-9"
    assert body["submission"] == sub.public_id
    assert enqueued_names() == ["submit_task"]
    # by stored file name, too; the same step twice is refused
    again = api.post(
        TASKS, {"input": sub.file.name, "kind": "audio", "step": "soundtrack"}, format="json"
    )
    assert again.status_code == 400
    assert "already has a task named" in again.json()["error"]["fields"]["step"][0]


def test_users_cannot_create_tasks_on_others_inputs(api, other_user) -> None:
    theirs = upload(other_user)
    for value in (theirs.public_id, theirs.file.name, "https://example.com/x.mov"):
        response = api.post(TASKS, {"input": value, "kind": "video"}, format="json")
        assert response.status_code == 400
        assert "must be one of your submissions" in response.json()["error"]["fields"]["input"][0]
    assert Task.objects.filter(created_by__isnull=False).count() == 0


def test_staff_create_tasks_on_any_input(staff_api, django_user_model) -> None:
    response = staff_api.post(
        TASKS,
        {
            "input": "https://tapestry-app.com/submissions/video-9182.mov",
            "kind": "video",
            "options": {"width": 1280, "format": "mp4"},
            "metadata": {"campaign": "summer-launch", "user_id": "usr_abc123"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    task = Task.objects.get(uuid=response.json()["id"])
    staff = django_user_model._default_manager.get_by_natural_key("staff")
    assert task.submission is None
    assert task.metadata["user_id"] == f"usr_{staff.pk}"  # the server's, not the client's
    assert task.metadata["campaign"] == "summer-launch"
    assert task.options == {"width": 1280, "format": "mp4"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "video"}, "input"),
        ({"input": "x", "kind": "Video!"}, "kind"),
        ({"input": "x", "kind": "video", "options": [1]}, "options"),
        ({"input": "x", "kind": "video", "metadata": {"n": 1}}, "metadata"),
    ],
)
def test_task_create_validation(staff_api, body, field) -> None:
    response = staff_api.post(TASKS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_task_list_filters(api, user) -> None:
    sub = upload(user, campaign="spring")
    upload(user, campaign="autumn")
    other = pipeline.submit(input="x", kind="audio", metadata={"order_id": "A-1"}, created_by=user)
    Task.objects.filter(submission=sub, name="video").update(status=Status.FAILED)

    def ids(**params) -> list[str]:
        response = api.get(TASKS, params)
        assert response.status_code == 200, response.json()
        return [t["id"] for t in response.json()["results"]]

    assert len(ids()) == 5
    assert ids(status="failed") == [str(sub.tasks.get(name="video").uuid)]
    assert len(ids(status="failed,created")) == 5
    assert ids(kind="audio") == [str(other.uuid)]
    assert len(ids(**{"metadata[campaign]": "spring"})) == 2
    assert ids(**{"metadata[campaign]": "spring", "metadata[submission_id]": "nope"}) == []
    assert ids(**{"metadata[order_id]": "A-1"}) == [str(other.uuid)]
    assert len(ids(submission=sub.public_id)) == 2
    bad = api.get(TASKS, {"metadata[bad key]": "x"})
    assert bad.status_code == 400
    assert "metadata" in bad.json()["error"]["fields"]


def test_others_tasks_are_404(api, other_api, user) -> None:
    task = upload(user).tasks.first()
    assert api.get(task_url(task)).status_code == 200
    assert other_api.get(task_url(task)).status_code == 404
    assert other_api.get(TASKS).json()["results"] == []
    assert other_api.patch(task_url(task), {"status": "failed"}, format="json").status_code in (
        404,
        405,
    )
    task.refresh_from_db()
    assert task.status == Status.CREATED


def test_task_detail_has_metadata_output_and_history(api, user) -> None:
    task = upload(user).tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(
        status=Status.FAILED, error={"kind": "x", "message": "y"}
    )
    pipeline.start_new_attempt(task.pk)
    body = api.get(task_url(task)).json()
    assert body["metadata"]["user_id"] == f"usr_{user.pk}"
    assert body["attempt"] == 2
    assert body["attempts"][0]["error"] == {"kind": "x", "message": "y"}
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


def test_pagination_is_cursor_based_with_a_limit(api, user) -> None:
    for _ in range(3):
        upload(user)
    first = api.get(SUBMISSIONS, {"limit": 2}).json()
    assert len(first["results"]) == 2
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 1
    seen = {s["id"] for s in first["results"]} | {s["id"] for s in second["results"]}
    assert len(seen) == 3


# --- query counts -----------------------------------------------------------------------------


def populate(django_user_model, staff_user, start: int, count: int) -> None:
    for n in range(start, start + count):
        owner = django_user_model.objects.create_user(f"u{n}")
        sub = upload(owner)
        Task.objects.filter(submission=sub, name="video").update(
            status=Status.SUCCEEDED, output_url=f"https://cdn.example.com/{n}.mp4"
        )
        pipeline.submit(input="x", kind="audio", created_by=owner)


def count_queries(client: APIClient, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {"limit": 100})
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.json()["results"])


@pytest.mark.parametrize("url", [SUBMISSIONS, TASKS])
def test_list_queries_do_not_grow_with_rows(django_user_model, url) -> None:
    staff = django_user_model.objects.create_user("boss", password="pw", is_staff=True)
    grant(staff, "view_submission", "view_task")
    client = APIClient()
    client.login(username="boss", password="pw")  # a real session: its queries count too
    per_row = 1 if url == SUBMISSIONS else 3
    populate(django_user_model, staff, 0, 5)
    small, rows = count_queries(client, url)
    assert rows == 5 * per_row
    populate(django_user_model, staff, 5, 45)
    large, rows = count_queries(client, url)
    assert rows == min(50 * per_row, 100)
    assert small == large, (small, large)
