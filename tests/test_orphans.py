"""A refused upload leaves no file behind; ``prune --orphans`` removes the files a rollback left."""

from __future__ import annotations

import json
import logging
import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media.models import Submission, Task
from tapestry_media.signals import task_pre_submit

from .helpers import app_alias, video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]

SUBMISSIONS = reverse("tapestry_media:submission-list")


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def keys(count: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(count)}


def test_refused_upload_request_leaves_no_file(user) -> None:
    """30 client keys pass the contract's 32 but not once the server adds its keys (33 for a
    video's tasks): refused before the file is stored. Positive control: 27 keys (the client
    limit) are accepted and stored."""
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(
        SUBMISSIONS, {"file": video_upload(), "metadata": json.dumps(keys(30))}, format="multipart"
    )
    assert response.status_code == 400, response.json()
    assert "metadata" in response.json()["error"]["message"]
    assert stored_files() == []
    assert not Submission.objects.exists()

    response = api.post(
        SUBMISSIONS, {"file": video_upload(), "metadata": json.dumps(keys(27))}, format="multipart"
    )
    assert response.status_code == 201
    assert stored_files() == [f"tapestry_media/uploads/{response.json()['id']}/clip.mp4"]


def test_upload_from_code_is_checked_before_its_file_is_stored(user, settings, monkeypatch) -> None:
    """Defaults, campaign/source, step metadata and the server's keys together are checked in
    pre_save, before the file field stores the file: the storage is never written to."""
    writes: list[str] = []
    storage_class = FileSystemStorage  # the tests' storage
    real_save = storage_class._save

    def recording_save(self, name, content):
        writes.append(name)
        return real_save(self, name, content)

    monkeypatch.setattr(storage_class, "_save", recording_save)
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "DEFAULT_METADATA": keys(26)}
    # the test's own transaction would be broken by the failed save: a savepoint of its own
    with pytest.raises(ValidationError, match="at most 32"), transaction.atomic(using=app_alias()):
        Submission.objects.create(
            uploader=user, campaign="c", source="s", metadata={"a": "1", "b": "2"},
            file=video_upload(),
        )  # fmt: skip
    assert writes == []
    assert stored_files() == []
    Submission.objects.create(uploader=user, campaign="c", metadata={"a": "1"}, file=video_upload())
    assert len(writes) == len(stored_files()) == 1


def test_a_save_that_raises_after_storing_deletes_the_file(user) -> None:
    """A task_pre_submit receiver adds keys the pre-check cannot know: the save raises after the
    file was stored, and the file goes. The same upload saved again is stored again."""

    def add_keys(sender, task, metadata, **kwargs) -> None:
        metadata.update(keys(40))

    task_pre_submit.connect(add_keys)
    submission = Submission(uploader=user, file=video_upload())
    try:
        with pytest.raises(ValidationError, match="keys"), transaction.atomic(using=app_alias()):
            submission.save()
    finally:
        task_pre_submit.disconnect(add_keys)
    assert stored_files() == []
    assert not Submission.objects.exists()
    submission.save()
    assert stored_files() == [submission.file.name]
    assert Task.objects.filter(submission=submission).exists()


# --- prune --orphans --------------------------------------------------------------------------


def prune(*args: str) -> str:
    out = StringIO()
    call_command("tapestry_media", "prune", "--orphans", *args, stdout=out)
    return out.getvalue()


def put(name: str, data: bytes, *, hours_old: float) -> Path:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - hours_old * 3600
    os.utime(path, (when, when))
    return path


def test_prune_orphans_removes_old_unreferenced_files_only(user) -> None:
    submission = Submission.objects.create(uploader=user, file=video_upload())
    kept_upload = Path(settings.MEDIA_ROOT) / submission.file.name
    os.utime(kept_upload, (time.time() - 7200, time.time() - 7200))
    Task.objects.filter(submission=submission).update(
        output={"storage_name": "tapestry_media/outputs/job_a/video.mp4"}
    )
    referenced_output = put("tapestry_media/outputs/job_a/video.mp4", b"o" * 10, hours_old=5)
    old_upload = put("tapestry_media/uploads/sub_gone/clip.mp4", b"x" * 100, hours_old=2)
    old_output = put("tapestry_media/outputs/job_gone/poster.jpg", b"y" * 23, hours_old=3)
    young = put("tapestry_media/uploads/sub_new/clip.mp4", b"z" * 7, hours_old=0.5)
    elsewhere = put("host_files/old.mp4", b"h", hours_old=100)

    dry = prune("--dry-run")
    assert "2 orphan file(s) would be deleted, 123 bytes would be freed (dry run)" in dry
    assert old_upload.exists()
    assert old_output.exists()

    out = prune()
    assert "prune: 2 orphan file(s) deleted, 123 bytes freed" in out
    assert not old_upload.exists()
    assert not old_output.exists()
    assert young.exists()
    assert kept_upload.exists()
    assert referenced_output.exists()
    assert elsewhere.exists()
    assert "prune: 0 orphan file(s) deleted, 0 bytes freed" in prune()


def test_prune_orphans_logs_counts_and_names_files_at_debug_only(user, caplog) -> None:
    # An orphan may be what an erasure could not delete: its name is the erased user's.
    put("tapestry_media/uploads/sub_gone/erin-holiday.mp4", b"x" * 100, hours_old=2)
    put("tapestry_media/outputs/job_gone/erin-holiday.jpg", b"y" * 23, hours_old=3)
    with caplog.at_level("DEBUG", logger="tapestry_media"):
        prune()
    at_info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    at_debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "deleted 2 orphan file(s), 123 bytes" in at_info
    assert not [m for m in at_info if "erin" in m], at_info
    # positive control: the names are there, one level down
    assert len([m for m in at_debug if "erin-holiday" in m]) == 2, at_debug
