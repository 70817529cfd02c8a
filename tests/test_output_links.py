"""Output URLs: only http(s) or a site path is stored, and only those reach an href or a src
(admin, example site, API), whatever a row holds (issue 11, item 4)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media import reconcile
from tapestry_media.links import is_safe_link
from tapestry_media.models import Submission, Task
from tapestry_media.remote import parse_task
from tapestry_media.status import Status

from .browser.site import use_example_site
from .helpers import video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network", "fresh_throttles")]

HOSTILE = [
    "javascript:alert(document.cookie)",
    "JAVASCRIPT:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\x01javascript:alert(1)",
    "\x1f data:text/html,<script>alert(1)</script>",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
]
SAFE = "https://cdn.example.test/out.mp4"
SAFE_POSTER = "https://cdn.example.test/poster.jpg"


def _dangerous(value: str) -> bool:
    """What a browser makes of an attribute: leading C0/space stripped, tab/newline dropped."""
    cleaned = value.lstrip("".join(map(chr, range(0x21)))).replace("\t", "").replace("\n", "")
    cleaned = cleaned.replace("\r", "").lower()
    return cleaned.startswith(("javascript:", "data:", "vbscript:"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values += [v or "" for k, v in attrs if k in ("href", "src", "poster", "action")]


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.values


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def finished_upload(user: Any, video_url: str, poster_url: str) -> Submission:
    """An upload whose video row holds ``output_url`` and whose poster row holds
    ``output["url"]``, both written straight to the database (no validation on the way)."""
    sub = Submission.objects.create(uploader=user, file=video_upload(), title="Clip")
    Task.objects.filter(pk=sub.tasks.get(name="video").pk).update(
        status=Status.SUCCEEDED, progress=100, output_url=video_url, output={"url": video_url}
    )
    Task.objects.filter(pk=sub.tasks.get(name="poster").pk).update(
        status=Status.SUCCEEDED, progress=100, output_url="", output=[{"url": poster_url}]
    )
    return sub


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        *HOSTILE,
        "",
        "//evil.example/x.mp4",
        "\\\\evil.example/x.mp4",
        "/\\evil.example/x.mp4",
        "https:///no-host",
        "ftp://cdn.example.test/a.mp4",
        "file:///etc/passwd",
        "https://cdn.example.test/a b.mp4",
        "https://cdn.example.test/a\u00a0.mp4",
        "https://[::1",
    ],
)
def test_refused(value: str) -> None:
    assert not is_safe_link(value)


def test_refused_with_any_whitespace_or_control_character() -> None:
    """Every whitespace or non-printable character of the BMP, at the start, inside the host
    and inside the path, is refused; the same URL without it is accepted."""
    assert is_safe_link("https://cdn.example.test/a.mp4")
    odd = [c for c in map(chr, range(0x10000)) if c.isspace() or not c.isprintable()]
    assert len(odd) > 2000  # controls, format characters, surrogates, private use, spaces
    accepted = [
        c
        for c in odd
        for url in (f"{c}https://cdn.example.test/a.mp4", f"https://cdn{c}.example.test/a.mp4",
                    f"https://cdn.example.test/a{c}.mp4", f"/media/a{c}.mp4")
        if is_safe_link(url)
    ]  # fmt: skip
    assert accepted == []


@pytest.mark.parametrize(
    "value",
    [
        SAFE,
        "HTTPS://CDN.EXAMPLE.TEST/A.MP4",
        "http://127.0.0.1:9000/media/a.mp4",
        "/media/tapestry_media/outputs/task_local_1/out.mp4",
        "media/out.mp4",
        "https://cdn.example.test/ä.mp4?sig=a:b",
    ],
)
def test_accepted(value: str) -> None:
    assert is_safe_link(value)


# --- storing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE[:7])
def test_a_result_with_a_hostile_url_is_stored_without_it(hostile: str, caplog) -> None:
    task = Task.objects.create(kind="video", input="x", backend="dummy", remote_id="task_1")
    reconcile.apply(
        parse_task(
            {"id": "task_1", "status": "completed", "outputs": [{"url": hostile, "width": 8}]}
        ),
        source="webhook",
    )
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert task.output_url == ""
    assert task.output == [{"width": 8}]
    assert "refused" in caplog.text


def test_a_result_with_an_https_url_is_stored() -> None:
    task = Task.objects.create(kind="video", input="x", backend="dummy", remote_id="task_1")
    reconcile.apply(
        parse_task({"id": "task_1", "status": "completed", "output": {"url": SAFE}}),
        source="webhook",
    )
    task.refresh_from_db()
    assert (task.output_url, task.output) == (SAFE, {"url": SAFE})


# --- rendering rows written to the database ---------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_admin_pages_render_no_hostile_link(admin_client, user, hostile: str) -> None:
    sub = finished_upload(user, hostile, hostile)
    video = sub.tasks.get(name="video")
    for url in (
        reverse("admin:tapestry_media_task_change", args=[video.pk]),
        reverse("admin:tapestry_media_submission_change", args=[sub.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        found = links(response.content.decode())
        assert found, "the page has links at all"
        assert not [v for v in found if _dangerous(v)], url


def test_admin_pages_render_an_https_output(admin_client, user) -> None:
    sub = finished_upload(user, SAFE, SAFE_POSTER)
    task_page = admin_client.get(
        reverse("admin:tapestry_media_task_change", args=[sub.tasks.get(name="video").pk])
    )
    assert links(task_page.content.decode()).count(SAFE) == 2  # the preview and the link
    sub_page = admin_client.get(reverse("admin:tapestry_media_submission_change", args=[sub.pk]))
    assert {SAFE, SAFE_POSTER} <= set(links(sub_page.content.decode()))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_example_site_renders_no_hostile_src(settings, client, user, hostile: str) -> None:
    use_example_site(settings)
    client.force_login(user)
    sub = finished_upload(user, hostile, hostile)
    detail = reverse("example:submission", args=[sub.public_id])
    for url in (detail, reverse("example:submissions")):
        response = client.get(url)
        assert response.status_code == 200
        assert not [v for v in links(response.content.decode()) if _dangerous(v)], url


def test_example_site_renders_an_https_output(settings, client, user) -> None:
    use_example_site(settings)
    client.force_login(user)
    sub = finished_upload(user, SAFE, SAFE_POSTER)
    detail = links(client.get(reverse("example:submission", args=[sub.public_id])).content.decode())
    assert {SAFE, SAFE_POSTER} <= set(detail)
    assert SAFE_POSTER in links(client.get(reverse("example:submissions")).content.decode())


def _api_bodies(user: Any, sub: Submission) -> list[Any]:
    api = APIClient()
    api.force_authenticate(user)
    video = sub.tasks.get(name="video")
    urls = [
        reverse("tapestry_media:submission-detail", args=[sub.public_id]),
        reverse("tapestry_media:submission-list"),
        reverse("tapestry_media:task-detail", args=[video.uuid]),
        reverse("tapestry_media:task-list"),
    ]
    bodies = []
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, url
        bodies.append(response.json())
    return bodies


@pytest.mark.parametrize("hostile", HOSTILE)
def test_api_hands_out_no_hostile_url(user, hostile: str) -> None:
    sub = finished_upload(user, hostile, hostile)
    for body in _api_bodies(user, sub):
        assert not [s for s in strings(body) if _dangerous(s)]
        assert hostile not in strings(body)


def test_api_hands_out_an_https_output(user) -> None:
    sub = finished_upload(user, SAFE, SAFE_POSTER)
    detail, listing, task, tasks = _api_bodies(user, sub)
    assert detail["outputs"] == {"video": SAFE, "poster": SAFE_POSTER}
    assert listing["results"][0]["outputs"] == detail["outputs"]
    assert (task["output_url"], task["output"]) == (SAFE, {"url": SAFE})
    assert {SAFE, SAFE_POSTER} <= set(strings(tasks))
