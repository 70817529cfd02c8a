"""Erasure and ``prune --outputs-superseded`` on a private S3 bucket (django-storages on moto's
server, a real HTTP endpoint on 127.0.0.1): objects go through the Storage API alone."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from tapestry_media import orphans, superseded, uploads
from tapestry_media.testing.jobs import drain_jobs

from .test_s3_storage import bucket, clip, loopback_only, process, s3  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.once]


def test_erase_removes_the_users_objects_from_the_bucket(
    s3,  # noqa: F811
    bucket,  # noqa: F811
    clip,  # noqa: F811
    user,
    other_user,
    django_capture_on_commit_callbacks,
) -> None:
    mine = process(user, clip, django_capture_on_commit_callbacks)
    theirs = process(other_user, clip, django_capture_on_commit_callbacks)
    host = default_storage.save("host/keep.txt", ContentFile(b"host"))
    mine_keys = {mine.file.name, *(t.output["storage_name"] for t in mine.tasks.all())}
    their_keys = {theirs.file.name, *(t.output["storage_name"] for t in theirs.tasks.all())}
    assert len(mine_keys) == len(their_keys) == 3
    assert set(s3.keys(bucket)) == mine_keys | their_keys | {host}  # positive control

    out = StringIO()
    call_command("tapestry_media", "erase", "--user", "alice", "--dry-run", stdout=out)
    sizes = sum(default_storage.size(k) for k in mine_keys)
    assert f"3 file(s), {sizes} bytes would be deleted" in out.getvalue()
    assert set(s3.keys(bucket)) == mine_keys | their_keys | {host}

    with django_capture_on_commit_callbacks(execute=True):
        call_command("tapestry_media", "erase", "--user", "alice", stdout=out)
    assert f"3 file(s), {sizes} bytes deleted" in out.getvalue()
    assert set(s3.keys(bucket)) == their_keys | {host}
    assert not any(mine.public_id in key for key in s3.keys(bucket))


def test_prune_outputs_superseded_in_the_bucket(
    s3,  # noqa: F811
    bucket,  # noqa: F811
    clip,  # noqa: F811
    user,
    django_capture_on_commit_callbacks,
) -> None:
    sub = process(user, clip, django_capture_on_commit_callbacks)
    old = {t.output["storage_name"] for t in sub.tasks.all()}
    with django_capture_on_commit_callbacks(execute=True):
        assert uploads.resubmit(sub.pk)
    drain_jobs(django_capture_on_commit_callbacks)
    sub.refresh_from_db()
    current = {t.output["storage_name"] for t in sub.current_tasks()}
    assert len(old) == len(current) == 2
    assert set(s3.keys(bucket)) == old | current | {sub.file.name}

    assert superseded.find() == []  # every object is younger than an hour
    found = superseded.find(min_age=timedelta(0))
    assert {o.name for o in found} == old
    assert all(o.size == default_storage.size(o.name) for o in found)
    assert orphans.remove(found) == sum(o.size for o in found)
    assert set(s3.keys(bucket)) == current | {sub.file.name}
