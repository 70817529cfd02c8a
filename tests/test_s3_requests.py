"""How many S3 requests processing one upload costs, by operation, against moto's server on
127.0.0.1 (tests/s3.py counts what reaches it). On real S3 each is a round trip of 10-50 ms
and a billed request, so the counts are asserted exactly: a new request must be a decision.

Each flow is taken in phases, as separate processes would run them: the API request, the
submit jobs (one per task: video and poster), then the local engine's runs. Nothing is cached
between phases: each job looks at storage itself, as a worker elsewhere would have to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media.models import LocalJob, Submission
from tapestry_media.testing.jobs import drain_jobs, enqueued_names, run_jobs

from .helpers import client_for
from .media import clip_upload
from .s3 import S3Server, running_server
from .s3 import loopback_only as loopback_only  # a fixture
from .test_direct_uploads import post_to_storage, target
from .test_s3_storage import bucket as bucket  # a fixture: the local engine on a new bucket
from .test_s3_storage import clip as clip  # a fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.once,
    pytest.mark.usefixtures("fresh_throttles", "loopback_only"),
]

SUBMISSIONS = reverse("tapestry_media:submission-list")

# The submit job of a local task: one HEAD (is the input there). An engine run: the two HEADs
# and the GET of reading the input through ``storage.open`` (django-storages' S3File loads the
# object when opened; boto3's download asks its size again), then the output's PUT.
LOCAL_SUBMIT = {"HeadObject": 2}
LOCAL_ENGINE = {"HeadObject": 4, "GetObject": 2, "PutObject": 2}


s3 = pytest.fixture(scope="module")(running_server)


def requests_per_phase(
    s3: S3Server, capture: Any, api: APIClient, body: dict[str, Any], *, engine: bool = True
) -> dict[str, dict[str, int]]:
    """The S3 requests of ``POST submissions/`` with ``body`` (its commit included), of the
    submit jobs it enqueued, then of the local engine's runs, by operation."""
    phases = {}
    with s3.requests.counting() as counts, capture(execute=True):
        response = api.post(SUBMISSIONS, body, format="multipart" if "file" in body else "json")
    assert response.status_code == 201, response.content
    phases["request"] = dict(counts)
    assert enqueued_names() == ["submit_task", "submit_task"]
    with s3.requests.counting() as counts, capture(execute=True):
        run_jobs()
    phases["submit"] = dict(counts)
    if engine:
        with s3.requests.counting() as counts:
            drain_jobs(capture)
        phases["engine"] = dict(counts)
        assert Submission.objects.get().status == "ready"
    return phases


def test_a_multipart_upload(s3, bucket, user, clip, django_capture_on_commit_callbacks) -> None:
    body = {"file": clip_upload(clip)}
    phases = requests_per_phase(s3, django_capture_on_commit_callbacks, client_for(user), body)
    assert phases == {
        "request": {"PutObject": 1},  # the size and type come from the upload itself
        "submit": LOCAL_SUBMIT,
        "engine": LOCAL_ENGINE,
    }


def test_a_direct_upload_claim(s3, bucket, user, clip, django_capture_on_commit_callbacks) -> None:
    api = client_for(user)
    upload = target(api)
    assert post_to_storage(upload, clip.read_bytes()).status_code == 204
    body = {"upload_key": upload["upload_key"]}
    phases = requests_per_phase(s3, django_capture_on_commit_callbacks, api, body)
    assert phases == {
        # The direct object's HEAD (its size, type and ETag, which the copy requires), the
        # final name's (a copy never overwrites), the copy, and deleting the direct object.
        "request": {"HeadObject": 2, "CopyObject": 1, "DeleteObject": 1},
        "submit": LOCAL_SUBMIT,
        "engine": LOCAL_ENGINE,
    }


def test_a_cloud_submit_signs_the_input_url_without_a_request(
    s3, bucket, cloud, user, clip, django_capture_on_commit_callbacks
) -> None:
    body = {"file": clip_upload(clip)}
    capture = django_capture_on_commit_callbacks
    phases = requests_per_phase(s3, capture, client_for(user), body, engine=False)
    assert phases == {"request": {"PutObject": 1}, "submit": {}}
    assert cloud.tasks_created == 2


# --- fewer requests, the same refusals ---------------------------------------------------------


def uploaded(user: Any, clip: Path, capture: Any) -> Submission:
    with capture(execute=True):
        return Submission.objects.create(uploader=user, file=clip_upload(clip))


def test_an_input_gone_before_the_submit_job_is_refused_there(
    s3, bucket, user, clip, django_capture_on_commit_callbacks
) -> None:
    sub = uploaded(user, clip, django_capture_on_commit_callbacks)
    s3.client().delete_object(Bucket=bucket, Key=sub.file.name)
    with s3.requests.counting() as counts, django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert dict(counts) == LOCAL_SUBMIT
    outcomes = sorted((t.name, t.status, t.error["kind"]) for t in sub.tasks.all())
    assert outcomes == [("poster", "failed", "input_missing"), ("video", "failed", "input_missing")]
    assert not LocalJob.objects.exists()
    assert enqueued_names() == []


def test_an_input_gone_before_the_engine_runs_fails_the_job_as_missing(
    s3, bucket, user, clip, django_capture_on_commit_callbacks
) -> None:
    sub = uploaded(user, clip, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert LocalJob.objects.count() == 2  # the input was there at create
    s3.client().delete_object(Bucket=bucket, Key=sub.file.name)
    with s3.requests.counting() as counts:
        drain_jobs(django_capture_on_commit_callbacks)
    assert set(LocalJob.objects.values_list("state", "error__kind")) == {
        ("failed", "input_missing")
    }
    missing = f"the input {sub.file.name!r} is not in the default storage"
    errors = {(t.status, t.error["kind"], t.error["message"]) for t in sub.tasks.all()}
    assert errors == {("failed", "input_missing", missing)}
    assert s3.keys(bucket) == []  # no output stored
    assert dict(counts) == {"HeadObject": 2}
