"""Metadata: validated against the contract's limits, errors name the key, and the server's
keys cannot be overridden for a submission's tasks."""

from __future__ import annotations

import pytest

import tapestry_media
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.metadata import MetadataError, parse_pairs, validate_metadata
from tapestry_media.models import Submission, Task
from tapestry_media.pipeline import job_priority
from tapestry_media.signals import SubmitVetoed, task_pre_submit
from tapestry_media.testing.jobs import enqueued, run_jobs

from .helpers import video_upload

SEED = {"user_id": "usr_abc123", "submission_id": "sub_9182", "campaign": "summer-launch"}


@pytest.mark.parametrize(
    ("metadata", "key", "fragment"),
    [
        ({"user id": "x"}, "user id", "metadata key 'user id' is invalid"),
        ({"k" * 33: "x"}, "k" * 33, "is invalid"),
        ({"": "x"}, "", "is invalid"),
        ({"priority": 5}, "priority", "metadata['priority'] must be a string, not int"),
        ({"vip": True}, "vip", "must be a string, not bool"),
        ({"note": "x" * 2049}, "note", "is 2049 characters; at most 2048"),
    ],
)
def test_invalid_metadata_names_the_key(metadata, key, fragment) -> None:
    with pytest.raises(MetadataError) as raised:
        validate_metadata(metadata)
    assert fragment in str(raised.value)
    assert raised.value.key == key


def test_limits_are_inclusive() -> None:
    ok = {f"k{i}": "v" * 2048 for i in range(32)}
    assert validate_metadata(ok) == ok
    with pytest.raises(MetadataError, match="33 keys"):
        validate_metadata({**ok, "one_more": "v"})


def test_parse_pairs() -> None:
    assert parse_pairs(["user_id=usr_abc123", "note=a=b"]) == {
        "user_id": "usr_abc123",
        "note": "a=b",
    }
    with pytest.raises(MetadataError, match="must look like key=value"):
        parse_pairs(["campaign"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("high", 10), ("normal", 0), ("LOW", -10), ("75", 75), ("500", 100), ("-7", -7), ("x", 0)],
)
def test_priority_flag_maps_to_job_priority(value, expected) -> None:
    assert job_priority({"priority": value}) == expected


@pytest.mark.django_db
def test_submit_from_code_takes_the_callers_keys_as_in_the_seed(
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        task = tapestry_media.submit(
            input="https://tapestry-app.com/submissions/video-9182.mov",
            kind="video",
            options={"width": 1280, "format": "mp4"},
            metadata=SEED,
        )
    run_jobs()
    call = DummyBackend.calls[0]
    assert call.spec.as_payload() == {
        "input": "https://tapestry-app.com/submissions/video-9182.mov",
        "kind": "video",
        "options": {"width": 1280, "format": "mp4"},
        "metadata": {**SEED, "tapestry_task": str(task.uuid)},
    }


@pytest.mark.django_db
def test_submit_from_code_reserves_the_correlation_key() -> None:
    with pytest.raises(MetadataError, match="'tapestry_task' is set by the server"):
        tapestry_media.submit(
            input="https://x.test/a.mov", kind="video", metadata={"tapestry_task": "forged"}
        )
    assert Task.objects.count() == 0


@pytest.mark.django_db
def test_submit_with_a_submission_reserves_its_keys(django_capture_on_commit_callbacks) -> None:
    sub = Submission.objects.create(file=video_upload())
    with pytest.raises(MetadataError, match="'user_id' is set by the server"):
        tapestry_media.submit(
            input=sub.file.name, kind="audio", submission=sub, metadata={"user_id": "usr_x"}
        )
    task = tapestry_media.submit(input=sub.file.name, kind="audio", submission=sub, name="sound")
    assert task.metadata["submission_id"] == sub.public_id


@pytest.mark.django_db
def test_bad_metadata_changes_nothing() -> None:
    with pytest.raises(MetadataError, match="priority"):
        tapestry_media.submit(input="https://x.test/a.mov", kind="video", metadata={"priority": 1})
    assert Task.objects.count() == 0
    assert enqueued() == []


@pytest.mark.django_db
def test_pre_submit_receivers_add_metadata_and_can_veto(django_capture_on_commit_callbacks):
    def receiver(sender, task, metadata, submission, **kwargs):
        if task.name == "poster":
            raise SubmitVetoed("no posters today")
        metadata["priority"] = "high"
        metadata["user_id"] = "usr_forged_by_receiver"

    task_pre_submit.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sub = Submission.objects.create(file=video_upload())
    finally:
        task_pre_submit.disconnect(receiver)
    assert list(sub.tasks.values_list("name", flat=True)) == ["video"]
    video = sub.tasks.get()
    assert video.metadata["priority"] == "high"
    assert video.priority == 10
    assert "user_id" not in video.metadata  # anonymous upload: the server owns the key
    assert enqueued()[0].task.priority == 10


@pytest.mark.django_db
def test_pre_submit_receivers_see_the_backend_chosen_for_the_task() -> None:
    seen: list[str] = []

    def receiver(sender, task, **kwargs):
        seen.append(task.backend)

    task_pre_submit.connect(receiver)
    try:
        task = tapestry_media.submit(input="https://x.test/a.mov", kind="video", backend="local")
        default = tapestry_media.submit(input="https://x.test/b.mov", kind="video")
    finally:
        task_pre_submit.disconnect(receiver)
    assert seen == ["local", "dummy"]
    assert (task.backend, default.backend) == ("local", "dummy")
