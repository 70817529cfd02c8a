"""The local engine as a backend: real ffmpeg, results through the webhook path."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from tapestry_media.backends import TaskSpec, get_backend
from tapestry_media.conf import get_settings
from tapestry_media.local import run as local_run
from tapestry_media.models import LocalJob, Submission, Task, WebhookEvent
from tapestry_media.signals import task_failed, task_succeeded, task_updated
from tapestry_media.status import Status
from tapestry_media.testing.jobs import drain_jobs, enqueued_names, run_jobs

from .helpers import local_engine_settings
from .media import clip_upload, make_clip

pytestmark = [pytest.mark.django_db, pytest.mark.once]


@pytest.fixture(autouse=True)
def local_backend(settings) -> None:
    settings.TAPESTRY_MEDIA = local_engine_settings(settings.TAPESTRY_MEDIA, width=160, poster_at=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=3, size="640x480")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def receiver(self, name: str):
        def receive(sender, **kwargs):
            self.calls.append((name, kwargs))

        return receive


@pytest.fixture
def signals():
    recorder = Recorder()
    pairs = [(task_updated, "updated"), (task_succeeded, "succeeded"), (task_failed, "failed")]
    receivers = [(signal, recorder.receiver(name)) for signal, name in pairs]
    for signal, receiver in receivers:
        signal.connect(receiver)
    yield recorder
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def test_upload_is_processed_end_to_end(
    clip, signals, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from tapestry_media.local.engine import commands

    # ffmpeg reports every 0.5 s by default; this tiny clip encodes faster than that.
    monkeypatch.setattr(commands, "PROGRESS_INTERVAL", 0.02)
    monkeypatch.setattr(local_run, "PROGRESS_EVERY_SECONDS", 0)
    with django_capture_on_commit_callbacks(execute=True):
        sub = Submission.objects.create(file=clip_upload(clip), campaign="summer-launch")
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    while enqueued_names():
        with django_capture_on_commit_callbacks(execute=True):
            run_jobs()

    sub.refresh_from_db()
    assert sub.status == "ready"
    video = sub.tasks.get(name="video")
    poster = sub.tasks.get(name="poster")
    assert video.status == poster.status == Status.SUCCEEDED
    assert video.remote_id.startswith("task_local_")
    assert video.output["width"] == 160
    assert video.output["height"] == 120
    assert video.output["type"] == "video/mp4"
    assert video.output_url == "https://tapestry-app.com/media/" + video.output["storage_name"]
    assert default_storage.exists(video.output["storage_name"])
    assert poster.output["type"] == "image/jpeg"
    assert poster.output_url.endswith(".jpg")

    # Results came through the webhook path: stored events, the metadata echoed.
    events = WebhookEvent.objects.filter(task=video)
    assert set(events.values_list("source", flat=True)) == {"local"}
    assert {"task.updated", "task.succeeded"} <= set(events.values_list("topic", flat=True))
    assert all(e.signature_scheme == "ittybit" for e in events)
    assert all(e.processed_at for e in events)

    progress = [kw["task"].progress for name, kw in signals.calls if name == "updated"]
    assert any(0 < p < 100 for p in progress if p is not None), progress
    succeeded = [kw["task"].name for name, kw in signals.calls if name == "succeeded"]
    assert sorted(succeeded) == ["poster", "video"]


def _submit(spec_input: str, kind: str = "video", options=None) -> Task:
    import tapestry_media

    return tapestry_media.submit(input=spec_input, kind=kind, options=options or {"format": "mp4"})


def test_unsupported_kind_fails_the_task_listing_what_is_supported(
    clip, django_capture_on_commit_callbacks
) -> None:
    name = default_storage.save("in/clip.mp4", clip_upload(clip))
    with django_capture_on_commit_callbacks(execute=True):
        task = _submit(name, kind="subtitles", options={})
    drain_jobs(django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error["kind"] == "unsupported"
    for kind in ("video", "image", "audio"):
        assert kind in task.error["message"]
    assert LocalJob.objects.count() == 0  # refused before anything ran


def test_bad_option_value_fails_naming_the_option(clip, django_capture_on_commit_callbacks):
    name = default_storage.save("in/clip.mp4", clip_upload(clip))
    with django_capture_on_commit_callbacks(execute=True):
        task = _submit(name, options={"format": "mp4", "fps": 500})
    drain_jobs(django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert "fps" in task.error["message"]


def test_corrupt_input_fails_with_ffmpegs_reason(django_capture_on_commit_callbacks) -> None:
    from django.core.files.base import ContentFile

    name = default_storage.save("in/broken.mp4", ContentFile(b"\x00garbage" * 500))
    with django_capture_on_commit_callbacks(execute=True):
        task = _submit(name)
    drain_jobs(django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error["kind"] == "input_invalid"
    assert "Invalid data" in task.error["message"] or "moov" in task.error["message"]
    assert WebhookEvent.objects.filter(task=task, topic="task.failed").count() == 1


def test_missing_input_is_refused_at_create(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        task = _submit("in/never-uploaded.mp4")
    drain_jobs(django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error["kind"] == "input_missing"


def test_create_is_idempotent_on_the_key(clip) -> None:
    name = default_storage.save("in/clip.mp4", clip_upload(clip))
    backend = get_backend("local")
    spec = TaskSpec(input=name, kind="video", options={"format": "mp4"})
    first = backend.create(spec, idempotency_key="k" * 20)
    again = backend.create(spec, idempotency_key="k" * 20)
    assert first.id == again.id
    assert LocalJob.objects.count() == 1
    other = backend.create(spec, idempotency_key="z" * 20)  # positive control
    assert other.id != first.id


def test_abandoned_job_is_run_again_after_its_lease(clip, django_capture_on_commit_callbacks):
    name = default_storage.save("in/clip.mp4", clip_upload(clip))
    backend = get_backend("local")
    with django_capture_on_commit_callbacks(execute=True):
        remote = backend.create(
            TaskSpec(input=name, kind="image", options={"format": "jpg"}), idempotency_key="a" * 20
        )
    job = LocalJob.objects.get(remote_id=remote.id)
    # a worker claimed it, then died: processing, lease still valid
    assert local_run.claim(job.pk, lease_seconds=300) is not None
    assert local_run.claim(job.pk, lease_seconds=300) is None  # the lease guards it
    from tapestry_media.testing.jobs import clear_jobs

    clear_jobs()
    with django_capture_on_commit_callbacks(execute=True):
        assert backend.get(remote.id).status == Status.PROCESSING
    assert enqueued_names() == []  # lease valid: not re-run (control for the next step)
    LocalJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    with django_capture_on_commit_callbacks(execute=True):
        backend.get(remote.id)
    assert enqueued_names() == ["run_local_job"]
    run_jobs()
    job.refresh_from_db()
    assert job.state == LocalJob.State.SUCCEEDED
    assert job.runs == 2


class LazyRemoteStorage:
    """A remote storage (no ``path()``) whose ``open()`` always succeeds: a missing file fails
    only when read, with the storage's own error (as Azure's does)."""

    class NotFound(Exception):
        pass

    def __init__(self, stored: bool) -> None:
        self.stored = stored
        self.exists_calls = 0

    def path(self, name: str) -> str:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        self.exists_calls += 1
        return self.stored

    def open(self, name: str, mode: str) -> Any:
        storage = self

        class Lazy(io.BytesIO):
            def read(self, *args: Any) -> bytes:
                if not storage.stored:
                    raise LazyRemoteStorage.NotFound(name)
                raise OSError("connection reset")

        return Lazy()


@pytest.mark.parametrize("stored", [False, True])
def test_a_remote_read_that_fails_asks_whether_the_input_is_there(
    stored, tmp_path, monkeypatch
) -> None:
    """The copy of a remote input does not ask ``exists()`` first; a failed read does, so a
    missing file is still ``input_missing`` whatever error the storage raised."""
    storage = LazyRemoteStorage(stored)
    monkeypatch.setattr(local_run, "default_storage", storage)
    expected = OSError if stored else FileNotFoundError
    config = get_settings()
    with pytest.raises(expected) as raised, local_run.local_input("in/clip.mp4", tmp_path, config):
        pytest.fail("no input to run on")
    assert storage.exists_calls == 1
    if stored:  # there, but unreadable: the storage's error, not "missing"
        assert str(raised.value) == "connection reset"
    else:
        assert str(raised.value) == "the input 'in/clip.mp4' is not in the default storage"
        assert isinstance(raised.value.__cause__, LazyRemoteStorage.NotFound)
        assert local_run._error_kind(raised.value) == "input_missing"
