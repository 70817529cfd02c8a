"""A private S3 bucket as the default storage (django-storages on moto's server, a real HTTP
endpoint on 127.0.0.1): output URLs are signed when they are read, so the links the API, the
admin and the example site give still work after the signing expiry; deleting a submission and
pruning orphans remove objects from the bucket (issue 13, item 4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media import orphans
from tapestry_media.api import outputs
from tapestry_media.api.outputs import output_src
from tapestry_media.conf import get_settings
from tapestry_media.local import run as local_run
from tapestry_media.models import LocalJob, Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import drain_jobs

from .browser.site import use_example_site
from .helpers import local_engine_settings
from .media import clip_upload, make_clip
from .s3 import S3Server, on_loopback, running_server, use_s3
from .s3 import loopback_only as loopback_only  # a fixture
from .test_output_links import links

pytestmark = [pytest.mark.django_db, pytest.mark.once, pytest.mark.usefixtures("loopback_only")]

EXPIRE = 2  # seconds a signed URL lives (AWS_QUERYSTRING_EXPIRE)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    yield from running_server()


@pytest.fixture
def bucket(settings, s3: S3Server) -> str:
    name = s3.new_bucket()
    use_s3(settings, s3, name, expire=EXPIRE)
    settings.TAPESTRY_MEDIA = local_engine_settings(settings.TAPESTRY_MEDIA, width=160, poster_at=0)
    return name


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=1)


def process(user: Any, clip: Path, capture: Any) -> Submission:
    """One upload taken through the local engine to ``ready``."""
    with capture(execute=True):
        sub = Submission.objects.create(uploader=user, file=clip_upload(clip), title="S3 clip")
    drain_jobs(capture)
    sub.refresh_from_db()
    assert sub.status == "ready", list(sub.tasks.values_list("name", "status", "error"))
    return sub


def fetch(url: str) -> requests.Response:
    assert on_loopback(url), url  # never anything but moto on 127.0.0.1
    return requests.get(url, timeout=10)


def served_urls(html: str) -> list[str]:
    return [url for url in links(html) if on_loopback(url)]


def test_links_read_after_the_signing_expiry_still_work(
    s3, bucket, clip, user, admin_client, client, settings, django_capture_on_commit_callbacks
) -> None:
    sub = process(user, clip, django_capture_on_commit_callbacks)
    video = sub.tasks.get(name="video")
    name = video.output["storage_name"]
    assert name in s3.keys(bucket)
    assert sub.file.name in s3.keys(bucket)
    size = s3.client().head_object(Bucket=bucket, Key=name)["ContentLength"]

    # What processing used to freeze into output["url"] and Task.output_url.
    frozen = default_storage.url(name)
    assert "X-Amz-Signature" in frozen
    assert fetch(frozen).status_code == 200
    job = LocalJob.objects.get(remote_id=video.remote_id)
    stored = json.dumps([video.output, video.output_url, job.output])
    # A row processed before this change holds that URL: it must be read through the name too.
    Task.objects.filter(pk=video.pk).update(
        output_url=frozen, output={**video.output, "url": frozen}
    )

    time.sleep(EXPIRE + 1)

    api = APIClient()
    api.force_authenticate(user)
    use_example_site(settings)
    client.force_login(user)

    def api_task() -> list[str]:
        body = api.get(reverse("tapestry_media:task-detail", args=[video.uuid])).json()
        return [body["output_url"], body["output"]["url"]]

    def api_submission() -> list[str]:
        path = reverse("tapestry_media:submission-detail", args=[sub.public_id])
        return list(api.get(path).json()["outputs"].values())

    def page(http: Any, path: str) -> Any:
        return lambda: served_urls(http.get(path).content.decode())

    surfaces = {
        "API task output_url, output.url": api_task,
        "API submission outputs": api_submission,
        "admin task page": page(
            admin_client, reverse("admin:tapestry_media_task_change", args=[video.pk])
        ),
        "admin submission page": page(
            admin_client, reverse("admin:tapestry_media_submission_change", args=[sub.pk])
        ),
        "example submission page": page(
            client, reverse("example:submission", args=[sub.public_id])
        ),
    }
    # Each surface's URLs are fetched as soon as it gives them: they live EXPIRE seconds
    # (less, as X-Amz-Date is truncated to the second), as a browser would fetch them.
    given: dict[str, list[str]] = {}
    answers: dict[tuple[str, str], requests.Response] = {}
    for where, read in surfaces.items():
        given[where] = read()
        answers.update({(where, url): fetch(url) for url in given[where]})
    assert all(given.values()), given
    failed = [
        f"{where}: {r.status_code} for …{url.split('?')[0][-30:]}"
        for (where, url), r in answers.items()
        if r.status_code != 200
    ]
    assert not failed, "\n".join(failed)
    whole = {len(r.content) for (_, url), r in answers.items() if name in url}
    assert whole == {size}
    assert any(name in url for url in given["admin task page"])
    assert any(name in url for url in given["example submission page"])

    # Positive controls: the frozen URL has expired, and the bucket is private.
    expired = fetch(frozen)
    assert expired.status_code == 403
    assert "Request has expired" in expired.text
    assert fetch(f"{s3.endpoint}/{bucket}/{name}").status_code == 403
    # Nothing this change processed holds a signed URL, to hand out after it expired.
    assert "X-Amz-Signature" not in stored


def test_deleting_a_submission_removes_its_objects_from_the_bucket(
    s3, bucket, clip, user, django_capture_on_commit_callbacks
) -> None:
    keep = default_storage.save("tapestry_media/outputs/other/keep.mp4", ContentFile(b"other"))
    with pytest.raises(NotImplementedError):  # a storage without path()
        default_storage.path(keep)
    sub = process(user, clip, django_capture_on_commit_callbacks)
    names = {sub.file.name, *(t.output["storage_name"] for t in sub.tasks.all())}
    assert len(names) == 3
    assert set(s3.keys(bucket)) == names | {keep}

    with django_capture_on_commit_callbacks(execute=True):
        sub.delete()

    assert s3.keys(bucket) == [keep]


def test_a_storage_name_in_a_cloud_result_deletes_nothing(
    s3, bucket, user, django_capture_on_commit_callbacks
) -> None:
    """Only the local engine's outputs are this app's files: a remote result naming another
    file (``storage_name``) neither gets a URL for it nor deletes it."""
    other = default_storage.save("tapestry_media/uploads/someone-else.mp4", ContentFile(b"x"))
    sub = Submission.objects.create(uploader=user, file=ContentFile(b"clip", name="mine.mp4"))
    cloud, local = (
        Task.objects.create(
            submission=sub, kind="video", input="x", backend=backend, status=Status.SUCCEEDED,
            output={"storage_name": other},
        )
        for backend in ("dummy", "local")
    )  # fmt: skip
    assert not output_src(cloud)
    assert other in output_src(local)  # the same row from the local engine is trusted

    Task.objects.filter(pk=local.pk).delete()
    with django_capture_on_commit_callbacks(execute=True):
        sub.delete()
    assert s3.keys(bucket) == [other]


def test_prune_finds_and_removes_orphans_in_the_bucket(
    s3, bucket, clip, user, django_capture_on_commit_callbacks
) -> None:
    sub = process(user, clip, django_capture_on_commit_callbacks)
    orphan = default_storage.save("tapestry_media/outputs/task_gone/video.mp4", ContentFile(b"o"))
    before = set(s3.keys(bucket))

    found = orphans.find(min_age=timedelta(0))
    assert [o.name for o in found] == [orphan]
    assert found[0].size == 1
    assert orphans.find() == []  # younger than MIN_AGE: untouched

    assert orphans.remove(found) == 1
    assert set(s3.keys(bucket)) == before - {orphan}
    assert sub.file.name in before - {orphan}


def test_a_signed_storage_url_is_not_stored_a_lasting_one_is(s3, bucket, settings) -> None:
    """What the local engine writes as ``output["url"]`` (and so ``Task.output_url``)."""
    name = default_storage.save("tapestry_media/outputs/task_x/video.mp4", ContentFile(b"v"))
    config = get_settings()
    assert local_run._lasting_url(name, config) == {}  # signed: it would expire

    settings.AWS_QUERYSTRING_AUTH = False  # a public bucket: plain URLs that last
    settings.STORAGES = {**settings.STORAGES}  # a new storage instance with the new setting
    assert local_run._lasting_url(name, config) == {"url": f"{s3.endpoint}/{bucket}/{name}"}


class CountingStorage:
    """The default storage, counting the URLs it is asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def url(self, name: str) -> str:
        self.names.append(name)
        return default_storage.url(name)


def test_one_signature_per_file_per_response(s3, bucket, user, monkeypatch) -> None:
    """Signing costs about a millisecond on S3: a response that shows a file's URL twice
    (``output_url`` and ``output.url``; a submission's ``tasks`` and ``outputs``) signs once."""
    sub = Submission.objects.create(uploader=user, file=ContentFile(b"clip", name="in.mp4"))
    for task in sub.tasks.all():
        Task.objects.filter(pk=task.pk).update(
            status=Status.SUCCEEDED, output={"storage_name": f"out/{task.name}.bin"}
        )
    counting = CountingStorage()
    monkeypatch.setattr(outputs, "default_storage", counting)
    api = APIClient()
    api.force_authenticate(user)

    tasks = api.get(reverse("tapestry_media:task-list")).json()["results"]
    assert len(tasks) == 2
    assert all(t["output_url"] == t["output"]["url"] != "" for t in tasks)
    assert sorted(counting.names) == ["out/poster.bin", "out/video.bin"]

    counting.names.clear()
    detail = api.get(reverse("tapestry_media:submission-detail", args=[sub.public_id])).json()
    assert set(detail["outputs"]) == {"video", "poster"}
    assert all(t["output_url"] for t in detail["tasks"])
    assert sorted(counting.names) == ["out/poster.bin", "out/video.bin"]
