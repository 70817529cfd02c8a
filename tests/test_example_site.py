"""The example site: sign in, upload, my submissions, the live detail page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media.models import Submission, Task
from tapestry_media.status import Status

from .browser.site import use_example_site
from .helpers import video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network")]


@pytest.fixture(autouse=True)
def _site(settings) -> None:
    use_example_site(settings)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_pages_need_a_sign_in(client) -> None:
    for name in ("example:upload", "example:submissions"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    home = client.get("/")
    assert home.status_code == 200
    assert b"Sign in to upload" in home.content


def test_sign_in_page_and_flow(client, user) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == reverse("example:submissions")
    wrong = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert b"form-error" in wrong.content


def test_upload_creates_a_submission_with_campaign(signed_in, user) -> None:
    response = signed_in.post(
        reverse("example:upload"),
        {"file": video_upload(), "title": "Beach", "campaign": "summer-launch", "source": "web"},
    )
    sub = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("example:submission", args=[sub.public_id])
    assert (sub.uploader, sub.title, sub.campaign, sub.source) == (
        user,
        "Beach",
        "summer-launch",
        "web",
    )
    assert sub.tasks.get(name="video").metadata["campaign"] == "summer-launch"


def test_upload_refuses_a_bad_file_with_the_reason(signed_in) -> None:
    response = signed_in.post(
        reverse("example:upload"),
        {"file": video_upload("notes.txt"), "title": "x", "source": "web"},
    )
    assert response.status_code == 200
    assert "Files of type &#x27;txt&#x27; are not accepted" in response.content.decode()
    assert Submission.objects.count() == 0


def test_my_submissions_lists_only_mine(signed_in, user, other_user) -> None:
    mine = Submission.objects.create(uploader=user, file=video_upload(), title="Mine")
    Submission.objects.create(uploader=other_user, file=video_upload(), title="Theirs")
    text = signed_in.get(reverse("example:submissions")).content.decode()
    assert "Mine" in text
    assert "Theirs" not in text
    assert reverse("example:submission", args=[mine.public_id]) in text


def test_detail_page_polls_the_api_and_plays_the_output(signed_in, user, other_user) -> None:
    sub = Submission.objects.create(uploader=user, file=video_upload(), campaign="summer")
    url = reverse("example:submission", args=[sub.public_id])
    text = signed_in.get(url).content.decode()
    api = reverse("tapestry_media:submission-detail", args=[sub.public_id])
    assert f'data-submission-api="{api}"' in text
    assert 'data-status="pending"' in text
    assert "example/submission.js" in text
    Task.objects.filter(submission=sub, name="video").update(
        status=Status.SUCCEEDED, output_url="/media/out/video.mp4"
    )
    Task.objects.filter(submission=sub, name="poster").update(
        status=Status.SUCCEEDED, output_url="/media/out/poster.jpg"
    )
    text = signed_in.get(url).content.decode()
    assert 'src="/media/out/video.mp4"' in text
    assert 'poster="/media/out/poster.jpg"' in text
    # someone else's submission is not found
    theirs = Submission.objects.create(uploader=other_user, file=video_upload())
    assert signed_in.get(reverse("example:submission", args=[theirs.public_id])).status_code == 404


def test_static_assets_exist() -> None:
    from django.contrib.staticfiles import finders

    assert finders.find("example/site.css")
    assert finders.find("example/submission.js")
    assert finders.find("tapestry_media/admin.css")


def test_a_task_made_through_post_tasks_gets_its_own_label(signed_in, user) -> None:
    sub = Submission.objects.create(uploader=user, file=video_upload(), title="Beach")
    api = APIClient()
    api.force_authenticate(user)
    made = api.post(
        reverse("tapestry_media:task-list"),
        {"input": sub.public_id, "kind": "video"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    short = made.json()["id"].replace("-", "")[:8]
    text = signed_in.get(reverse("example:submission", args=[sub.public_id])).content.decode()
    assert text.count('data-step="video"') == 1  # the pipeline's own step
    assert f'data-step="task-{short}"' in text
    assert f"Video · task {short}" in text


def test_the_processing_message_is_marked_for_the_page_script(signed_in) -> None:
    response = signed_in.post(
        reverse("example:upload"),
        {"file": video_upload(), "title": "Beach", "source": "web"},
        follow=True,
    )
    text = response.content.decode()
    assert 'class="flash-success" data-flash="processing"' in text
    assert "Processing has started" in text
