"""Hostile inputs to the local engine (issue 11, items 1, 7 and 8): manifests that point at
another user's clip, bad URLs, names outside storage, crashes, and paths in error messages."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse

import tapestry_media
from tapestry_media.backends import get_backend
from tapestry_media.local import run as local_run
from tapestry_media.models import LocalJob, Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import drain_jobs, enqueued_names

from .browser.site import use_example_site
from .media import clip_upload, make_clip

pytestmark = [pytest.mark.django_db]

VICTIM = "sub_victim/victim.mp4"
DASH = (
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S"'
    ' minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>'
    '<AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" width="320"'
    ' height="240" codecs="avc1.42c00d"><BaseURL>{ref}</BaseURL></Representation>'
    "</AdaptationSet></Period></MPD>\n"
)
HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{ref}\n#EXT-X-ENDLIST\n"
HOSTILE = {
    "dash": DASH,
    "dash-absolute": DASH.replace("{ref}", "file://{abs}"),
    "dash-bom": "\ufeff<?xml version='1.0'?>\n" + DASH,
    "dash-comment": "<?xml version='1.0'?>\n<!-- a playlist -->\n" + DASH,
    "hls": HLS,
    "hls-blank-line": "\n" + HLS,
    "concat": "ffconcat version 1.0\nfile '{ref}'\n",
    "sdp": "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
}


@pytest.fixture(autouse=True)
def local_backend(settings) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "local",
        "PIPELINE": {"video": [{"name": "video", "kind": "video", "options": {"width": 160}}]},
    }


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "victim.mp4", seconds=2)


@pytest.fixture
def victim(clip: Path) -> str:
    name = default_storage.save(VICTIM, clip_upload(clip))
    assert name == VICTIM
    return name


def _outputs() -> list[str]:
    root = Path(django_settings.MEDIA_ROOT) / "tapestry_media" / "outputs"
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _run(capture, name: str, kind: str = "image", options: dict | None = None) -> Task:
    with capture(execute=True):
        task = tapestry_media.submit(input=name, kind=kind, options=options or {"format": "png"})
    drain_jobs(capture)
    task.refresh_from_db()
    return task


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_manifest_upload_never_reads_the_file_it_names(
    case: str, victim: str, django_capture_on_commit_callbacks
) -> None:
    content = HOSTILE[case].format(ref="../sub_victim/victim.mp4", abs=default_storage.path(victim))
    name = default_storage.save("sub_attacker/x.mp4", ContentFile(content.encode()))
    task = _run(django_capture_on_commit_callbacks, name)
    assert task.status == Status.FAILED
    assert task.error["kind"] == "input_refused", task.error
    assert _outputs() == []
    assert default_storage.exists(victim)


def test_the_victim_itself_is_processed(victim: str, django_capture_on_commit_callbacks) -> None:
    """Positive control: the clip the manifests name is readable, and outputs are seen."""
    task = _run(django_capture_on_commit_callbacks, victim)
    assert task.status == Status.SUCCEEDED, task.error
    assert len(_outputs()) == 1


# --- item 7: bad ports, redirects, names outside storage, crashes ---------------------------


@pytest.fixture
def redirector(settings) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://x:99999/clip.mp4")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "LOCAL_ALLOW_PRIVATE_ADDRESSES": True}
    yield f"http://127.0.0.1:{httpd.server_address[1]}/clip.mp4"
    httpd.shutdown()
    httpd.server_close()


def _assert_failed_and_released(task: Task, kind: str, words: str) -> LocalJob:
    assert task.status == Status.FAILED
    assert task.error["kind"] == kind, task.error
    assert words in task.error["message"]
    job = LocalJob.objects.get()
    assert job.state == LocalJob.State.FAILED
    assert job.lease_expires_at is None
    return job


def test_a_bad_port_fails_the_job(no_network, django_capture_on_commit_callbacks) -> None:
    task = _run(django_capture_on_commit_callbacks, "http://x:99999/clip.mp4")
    _assert_failed_and_released(task, "input_refused", "invalid port")


def test_a_redirect_to_a_bad_port_fails_the_job(
    redirector: str, django_capture_on_commit_callbacks
) -> None:
    task = _run(django_capture_on_commit_callbacks, redirector)
    _assert_failed_and_released(task, "input_refused", "invalid port")


def test_any_crash_in_a_job_fails_it_once(
    victim: str, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom at /srv/secret/path")

    monkeypatch.setattr(local_run.engine, "run_operation", crash)
    task = _run(django_capture_on_commit_callbacks, victim)
    job = _assert_failed_and_released(task, "engine_error", "RuntimeError")
    assert "/srv/secret" not in task.error["message"]
    assert "boom at /srv/secret/path" in task.error["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        get_backend("local").get(job.remote_id)  # resync's look at it
    assert enqueued_names() == []  # not run again
    assert LocalJob.objects.get().runs == 1


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "in/../../etc/passwd"])
def test_a_name_outside_storage_is_refused_for_good(
    name: str, django_capture_on_commit_callbacks
) -> None:
    task = _run(django_capture_on_commit_callbacks, name)
    assert task.status == Status.FAILED
    assert task.error["kind"] == "input_refused", task.error
    assert task.retries == 0
    assert not LocalJob.objects.exists()


# --- item 8: no server path reaches users -----------------------------------------------------


def test_a_corrupt_upload_shows_users_no_server_path(
    settings, client, user, django_capture_on_commit_callbacks
) -> None:
    use_example_site(settings)
    with django_capture_on_commit_callbacks(execute=True):
        sub = Submission.objects.create(
            uploader=user, file=ContentFile(os.urandom(20_000), name="holiday.mp4")
        )
    drain_jobs(django_capture_on_commit_callbacks)
    task = sub.tasks.get()
    assert task.status == Status.FAILED
    root = os.path.abspath(str(settings.MEDIA_ROOT))
    assert root in task.error["detail"]  # control: ffmpeg's own text names the path
    assert "holiday" in task.error["message"]
    client.force_login(user)
    pages = {
        "api task": client.get(reverse("tapestry_media:task-detail", args=[task.uuid])),
        "api submission": client.get(
            reverse("tapestry_media:submission-detail", args=[sub.public_id])
        ),
        "example page": client.get(reverse("example:submission", args=[sub.public_id])),
    }
    out = io.StringIO()
    call_command("ittybit", "tasks", str(task.uuid), stdout=out)
    call_command("ittybit", "tasks", str(task.uuid), "--json", stdout=out)
    texts = {name: page.content.decode() for name, page in pages.items()}
    texts["cli"] = out.getvalue()
    for where, text in texts.items():
        assert "holiday" in text or where == "api submission", where
        assert root not in text, where
        assert "file:" not in text, where
    # An earlier attempt's error (kept when a task is retried) is shown the same way.
    Task.objects.filter(pk=task.pk).update(
        attempts=[{"attempt": 1, "status": "failed", "error": task.error}]
    )
    page = client.get(reverse("tapestry_media:task-detail", args=[task.uuid]))
    attempt_error = page.json()["attempts"][0]["error"]
    assert "holiday" in attempt_error["message"]
    assert root not in page.content.decode()
    assert "file:" not in page.content.decode()
