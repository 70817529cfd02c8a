"""``prune --outputs-superseded``: outputs of earlier file generations and attempts go; current
outputs, young files and a superseded output a current task still points to stay."""

from __future__ import annotations

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

import tapestry_media
from tapestry_media import uploads
from tapestry_media.models import LocalJob, Submission, Task
from tapestry_media.status import Status

from .helpers import video_upload

pytestmark = pytest.mark.django_db

OUT = "tapestry_media/outputs"


@pytest.fixture(autouse=True)
def one_step(settings) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "PIPELINE": {"video": [{"name": "video", "kind": "video", "options": {"width": 96}}]},
    }


def put(name: str, size: int, *, hours_old: float) -> Path:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - hours_old * 3600
    os.utime(path, (when, when))
    return path


def finish(
    task: Task, name: str, size: int, *, hours_old: float = 3, backend: str = "local"
) -> Path:
    """``task`` succeeded with ``name`` as its output, stored by the local engine."""
    Task.objects.filter(pk=task.pk).update(
        status=Status.SUCCEEDED, backend=backend, output={"storage_name": name, "filesize": size}
    )
    return put(name, size, hours_old=hours_old)


def prune(*args: str) -> str:
    out = StringIO()
    call_command("tapestry_media", "prune", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def world(user) -> dict[str, Path]:
    sub = Submission.objects.create(uploader=user, file=video_upload())
    upload = Path(settings.MEDIA_ROOT) / sub.file.name
    os.utime(upload, (time.time() - 7200, time.time() - 7200))
    (old,) = sub.tasks.filter(generation=0)
    files = {"upload": upload, "gen0": finish(old, f"{OUT}/task_a/clip.mp4", 100)}
    assert uploads.resubmit(sub.pk)
    sub.refresh_from_db()
    assert sub.file_generation == 1
    (current,) = sub.current_tasks()
    files["gen1"] = finish(current, f"{OUT}/task_b/clip.mp4", 10)

    # A second upload: its first generation's output is young (finished minutes ago).
    sub2 = Submission.objects.create(uploader=user, file=video_upload("two.mp4"))
    (old2,) = sub2.tasks.all()
    files["young"] = finish(old2, f"{OUT}/task_c/two.mp4", 7, hours_old=0.2)
    assert uploads.resubmit(sub2.pk)

    # A third: its old generation's output is the very file its current task points to.
    sub3 = Submission.objects.create(uploader=user, file=video_upload("three.mp4"))
    (old3,) = sub3.tasks.all()
    files["shared"] = finish(old3, f"{OUT}/task_d/three.mp4", 5)
    assert uploads.resubmit(sub3.pk)
    (current3,) = Submission.objects.get(pk=sub3.pk).current_tasks()
    finish(current3, f"{OUT}/task_d/three.mp4", 5)

    # A retried API task: the local engine's job of its first attempt stored an output.
    retried = tapestry_media.submit(input="https://example.invalid/x.mp4", kind="video")
    Task.objects.filter(pk=retried.pk).update(
        attempt=2, attempts=[{"attempt": 1, "remote_id": "task_local_first", "status": "failed"}]
    )
    LocalJob.objects.create(
        remote_id="task_local_first", idempotency_key="k-1", kind="video", input="x",
        output={"storage_name": f"{OUT}/task_local_first/x.mp4"},
    )  # fmt: skip
    files["attempt1"] = put(f"{OUT}/task_local_first/x.mp4", 1000, hours_old=2)
    files["attempt2"] = finish(retried, f"{OUT}/task_local_second/x.mp4", 20)
    # A superseded cloud task claiming a stored file: not trusted, never deleted for it.
    sub4 = Submission.objects.create(uploader=user, file=video_upload("four.mp4"))
    files["claimed"] = finish(sub4.tasks.get(), f"{OUT}/host/four.mp4", 9, backend="ittybit")
    assert uploads.resubmit(sub4.pk)
    # An old file no row points to: an orphan, not this option's business.
    files["orphan"] = put(f"{OUT}/task_gone/y.mp4", 3, hours_old=5)
    return files


def test_prune_outputs_superseded(world) -> None:
    dry = prune("--outputs-superseded", "--dry-run")
    assert "2 superseded output file(s) would be deleted, 1100 bytes would be freed" in dry
    assert all(path.exists() for path in world.values())

    out = prune("--outputs-superseded")
    assert "prune: 2 superseded output file(s) deleted, 1100 bytes freed" in out
    gone = {key for key, path in world.items() if not path.exists()}
    assert gone == {"gen0", "attempt1"}
    # the rows stay, as history
    assert Task.objects.filter(output__storage_name=f"{OUT}/task_a/clip.mp4").exists()

    assert "prune: 0 superseded output file(s) deleted, 0 bytes freed" in prune(
        "--outputs-superseded"
    )


def test_outputs_superseded_and_orphans_together(world) -> None:
    out = prune("--outputs-superseded", "--orphans")
    assert "2 superseded output file(s) deleted, 1100 bytes freed" in out
    assert "1 orphan file(s) deleted, 3 bytes freed" in out
    kept = {key for key, path in world.items() if path.exists()}
    assert kept == {"upload", "gen1", "young", "shared", "attempt2", "claimed"}


def test_prune_without_a_target_is_an_error(world) -> None:
    with pytest.raises(CommandError, match="--outputs-superseded"):
        prune()
    assert all(path.exists() for path in world.values())
