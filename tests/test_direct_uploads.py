"""Uploads straight to storage (issue 15, item 1) against moto's S3 server on 127.0.0.1, behind
the layer of tests/s3.py that checks a POST upload against its signed policy as S3 does (moto
itself stores any POST): a presigned POST from ``POST submissions/uploads/``, the file POSTed
over real HTTP to the bucket, then ``POST submissions/`` with the key. Every refused key leaves
nothing behind, next to a positive control that the same request with a good key works."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tapestry_media import direct_uploads, erasure, orphans, pipeline
from tapestry_media.models import Submission, Task
from tapestry_media.testing.jobs import enqueued_names

from .browser.site import use_example_site
from .helpers import app_alias, client_for, video_upload
from .s3 import S3Server, on_loopback, running_server, use_s3
from .s3 import loopback_only as loopback_only  # a fixture

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("fresh_throttles", "loopback_only"),
]

SUBMISSIONS = reverse("tapestry_media:submission-list")
TARGETS = reverse("tapestry_media:submission-upload-target")
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
s3 = pytest.fixture(scope="module")(running_server)


@pytest.fixture
def bucket(settings, s3: S3Server) -> str:
    name = s3.new_bucket()
    use_s3(settings, s3, name, expire=300)
    return name


@pytest.fixture
def api(user) -> APIClient:
    return client_for(user)


def target(api: APIClient, filename: str = "clip.mp4", **extra: Any) -> dict[str, Any]:
    response = api.post(TARGETS, {"filename": filename, **extra}, format="json")
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def post_to_storage(
    upload: dict[str, Any], content: bytes, *, fields: dict[str, str] | None = None
) -> requests.Response:
    """The browser's part: the form fields as given, then the file, straight to the bucket."""
    assert on_loopback(upload["url"]), upload["url"]
    form = {**upload["fields"], **(fields or {})}
    files = {"file": ("clip.mp4", content, form.get("Content-Type", "video/mp4"))}
    return requests.post(upload["url"], data=form, files=files, timeout=30)


def uploaded(api: APIClient, content: bytes = MP4, filename: str = "clip.mp4") -> str:
    upload = target(api, filename)
    stored = post_to_storage(upload, content)
    assert stored.status_code == 204, stored.text
    key: str = upload["upload_key"]
    return key


def read_back(s3: S3Server, bucket: str, name: str) -> bytes:
    body: bytes = s3.client().get_object(Bucket=bucket, Key=name)["Body"].read()
    return body


def create(api: APIClient, key: str, **extra: Any) -> Any:
    return api.post(SUBMISSIONS, {"upload_key": key, **extra}, format="json")


def refused(response: Any, field: str, words: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["kind"] == "invalid"
    assert words in " ".join(error["fields"][field]), error


def nothing_created() -> None:
    assert Submission.objects.count() == 0
    assert Task.objects.count() == 0
    assert enqueued_names() == []


# --- the happy path ---------------------------------------------------------------------------


def test_a_direct_upload_becomes_a_submission_whose_steps_are_submitted(
    s3, bucket, api, user, other_user, django_capture_on_commit_callbacks
) -> None:
    upload = target(api, "Beach day (take 2).MP4", size=len(MP4))
    key = upload["upload_key"]
    assert key.startswith("tapestry_media/uploads/direct/")
    assert key.endswith("/Beach_day__take_2_.mp4")
    # The owner part is an HMAC of the pk under SECRET_KEY, not the pk (no usr_<pk> in the bucket).
    assert key.split("/")[3] == direct_uploads.owner_segment(user.pk)
    assert direct_uploads.owner_segment(other_user.pk) != key.split("/")[3]
    assert upload["fields"]["key"] == key
    assert upload["fields"]["Content-Type"] == upload["content_type"] == "video/mp4"
    assert upload["max_bytes"] == 2 * 1024**3
    assert post_to_storage(upload, MP4).status_code == 204
    assert key in s3.keys(bucket)

    with django_capture_on_commit_callbacks(execute=True):
        response = create(api, key, title="Beach", campaign="summer", metadata={"a": "1"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Beach"
    assert body["file_size"] == len(MP4)
    assert body["content_type"] == "video/mp4"
    assert body["media_kind"] == "video"
    assert {t["step"] for t in body["tasks"]} == {"video", "poster"}
    sub = Submission.objects.get()
    # Copied in the bucket to the name a multipart upload gets, which no target can write;
    # the direct object is deleted once the claim is committed.
    final = f"tapestry_media/uploads/{sub.public_id}/Beach_day__take_2_.mp4"
    assert sub.file.name == final
    assert sub.public_id == direct_uploads.claimed_id(key)
    assert sub.uploader == user
    assert sorted(sub.tasks.values_list("name", flat=True)) == ["poster", "video"]
    assert enqueued_names() == ["submit_task", "submit_task"]
    assert s3.keys(bucket) == [final]
    assert read_back(s3, bucket, final) == MP4


def test_a_session_user_claims_a_key(s3, bucket, client, user) -> None:
    """Signed in with a session (as the example site's script is), ``request.user`` is lazy."""
    client.force_login(user)
    key = uploaded(client_for(user))
    response = client.post(SUBMISSIONS, {"upload_key": key}, content_type="application/json")
    assert response.status_code == 201, response.content
    sub = Submission.objects.get()
    assert sub.file.name == f"tapestry_media/uploads/{sub.public_id}/clip.mp4"


def test_create_with_a_key_costs_a_fixed_number_of_queries(
    s3, bucket, api, django_capture_on_commit_callbacks
) -> None:
    key = uploaded(api)
    database = connections[app_alias()]  # the user model and this app's (one alias, or routed)
    with CaptureQueriesContext(database) as queries, django_capture_on_commit_callbacks():
        response = create(api, key)
    assert response.status_code == 201, response.content
    # Lock the user's row, is the key unused, insert the submission, insert its 2 tasks (one
    # statement), the user's permissions (2, for_user), the response's submission and tasks.
    # Savepoints aside, asserted exactly: a new query must be a decision.
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 8, "\n".join(statements)
    assert "FOR UPDATE" in statements[0] or database.vendor == "sqlite"


# --- the file never passes through Django ----------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


class CountingInput:
    """A request's ``wsgi.input`` that counts the bytes read from it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.bytes_read = 0

    def read(self, *args: Any) -> bytes:
        chunk: bytes = self.stream.read(*args)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, *args: Any) -> bytes:
        line: bytes = self.stream.readline(*args)
        self.bytes_read += len(line)
        return line


class BodyReads:
    """Wraps the test client's WSGI handler: for each request, how many body bytes Django
    (middleware, parsers, views) read from ``wsgi.input``."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.reads: list[tuple[str, str, int]] = []

    def __call__(self, environ: dict[str, Any]) -> Any:
        counted = environ["wsgi.input"] = CountingInput(environ["wsgi.input"])
        try:
            return self.handler(environ)
        finally:
            self.reads.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], counted.bytes_read))


def test_a_50_mb_direct_upload_reads_no_request_body_over_4_kib(
    s3, bucket, api, django_capture_on_commit_callbacks
) -> None:
    recorder = api.handler = BodyReads(api.handler)
    content = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (FIFTY_MB - 12)

    upload = target(api, "big.mp4", size=len(content))
    assert post_to_storage(upload, content).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        response = create(api, upload["upload_key"], title="Big one")
    assert response.status_code == 201, response.content
    assert response.json()["file_size"] == FIFTY_MB
    assert enqueued_names() == ["submit_task", "submit_task"]

    assert [(method, path) for method, path, _ in recorder.reads] == [
        ("POST", TARGETS),
        ("POST", SUBMISSIONS),
    ]
    assert all(0 < read <= 4096 for _, _, read in recorder.reads), recorder.reads

    # Positive control: the same recorder sees the multipart path read the whole file.
    recorder.reads.clear()
    files = {"file": SimpleUploadedFile("big.mp4", content, content_type="video/mp4")}
    with django_capture_on_commit_callbacks(execute=True):
        plain = api.post(SUBMISSIONS, files, format="multipart")
    assert plain.status_code == 201, plain.content
    [(_, _, read)] = recorder.reads
    assert read >= FIFTY_MB


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("clip.mp4", "clip.mp4"),
        ("C:\\Users\\me\\Beach Day.MOV", "Beach_Day.mov"),
        ("../../etc/passwd.mp4", "passwd.mp4"),
        ("-rf .mp4", "rf.mp4"),
        ("-.mp4", "upload.mp4"),
        ("видео.webm", "_____.webm"),
        ("a" * 250 + ".mp4", "a" * 116 + ".mp4"),
    ],
)
def test_every_issued_key_can_be_claimed(s3, bucket, api, filename, stored) -> None:
    """Whatever the client's file name, the key it is given is one the server takes back."""
    upload = target(api, filename)
    assert upload["upload_key"].rsplit("/", 1)[1] == stored
    assert post_to_storage(upload, MP4).status_code == 204
    assert create(api, upload["upload_key"]).status_code == 201


# --- what storage refuses: the policy --------------------------------------------------------


def test_the_policy_refuses_a_file_over_the_limit(s3, bucket, api, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 2000}
    upload = target(api)
    assert upload["max_bytes"] == 2000
    too_big = post_to_storage(upload, b"\x00" * 2001)
    assert too_big.status_code == 400
    assert "EntityTooLarge" in too_big.text
    assert upload["upload_key"] not in s3.keys(bucket)
    # positive control: the same target takes a file at the limit
    assert post_to_storage(upload, b"\x00" * 2000).status_code == 204
    assert upload["upload_key"] in s3.keys(bucket)


def test_the_policy_fixes_the_key_and_the_content_type(s3, bucket, api) -> None:
    upload = target(api)
    other_key = upload["upload_key"].rsplit("/", 1)[0] + "/other.mp4"
    assert post_to_storage(upload, MP4, fields={"key": other_key}).status_code == 403
    html = post_to_storage(upload, MP4, fields={"Content-Type": "text/html"})
    assert html.status_code == 403
    assert s3.keys(bucket) == []
    assert post_to_storage(upload, MP4).status_code == 204  # positive control


def test_the_target_refuses_a_bad_name_or_size_before_signing(api, s3, bucket, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 2000}
    refused(api.post(TARGETS, {"filename": "notes.exe"}, format="json"), "filename", "'exe'")
    refused(api.post(TARGETS, {"filename": "clip.mp4", "size": 2001}), "size", "limit")
    refused(api.post(TARGETS, {"size": 10}, format="json"), "filename", "required")
    assert target(api, "clip.mp4", size=2000)["upload_key"]  # positive control


# --- what the server refuses: the key ---------------------------------------------------------


def test_an_object_over_the_limit_is_refused_when_claimed(
    s3, bucket, api, settings, django_capture_on_commit_callbacks
) -> None:
    """Were the policy bypassed (a larger limit then, an object written some other way), the
    size is checked again on the stored object."""
    key = uploaded(api, b"\x00" * 3000)
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 2000}
    with django_capture_on_commit_callbacks(execute=True):
        refused(create(api, key), "upload_key", "the limit is 2.0")
    nothing_created()
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 3000}
    assert create(api, key).status_code == 201  # positive control


def test_a_direct_upload_is_at_most_what_one_copy_copies(s3, bucket, api, monkeypatch) -> None:
    """S3 copies up to 5 GiB in one CopyObject: the target's limit and the claim's check say
    so whatever MAX_UPLOAD_BYTES allows (here the limit is made 2000 bytes to try it)."""
    key = uploaded(api, b"\x00" * 3000)
    monkeypatch.setattr(direct_uploads, "COPY_LIMIT", 2000)
    assert target(api)["max_bytes"] == 2000
    refused(create(api, key), "upload_key", "the most a direct upload can be")
    nothing_created()
    monkeypatch.setattr(direct_uploads, "COPY_LIMIT", 3000)
    assert create(api, key).status_code == 201  # positive control


def test_a_key_with_a_refused_extension(s3, bucket, api, user, settings) -> None:
    key = uploaded(api, filename="clip.mp4")
    # The extension list changed between upload and claim (or a client forged the name).
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "ALLOWED_EXTENSIONS": {"video": ["mov"], "image": ["png"]},
    }
    refused(create(api, key), "upload_key", "'mp4' are not accepted")
    nothing_created()
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "ALLOWED_EXTENSIONS": {"video": ["mp4"]}}
    assert create(api, key).status_code == 201


def test_a_key_with_nothing_uploaded(s3, bucket, api) -> None:
    upload = target(api)
    refused(create(api, upload["upload_key"]), "upload_key", "no uploaded file")
    nothing_created()
    assert post_to_storage(upload, MP4).status_code == 204
    assert create(api, upload["upload_key"]).status_code == 201


def test_another_users_key_is_refused(s3, bucket, api, other_user) -> None:
    key = uploaded(api)
    refused(create(client_for(other_user), key), "upload_key", "not one of your uploads")
    nothing_created()
    assert create(api, key).status_code == 201


def test_a_key_is_used_once(s3, bucket, api, django_capture_on_commit_callbacks) -> None:
    key = uploaded(api)
    with django_capture_on_commit_callbacks(execute=True):
        assert create(api, key).status_code == 201
    before = (Submission.objects.count(), Task.objects.count(), enqueued_names())
    with django_capture_on_commit_callbacks(execute=True):
        refused(create(api, key), "upload_key", "in use by a submission already")
    assert (Submission.objects.count(), Task.objects.count(), enqueued_names()) == before


def test_posting_again_to_a_claimed_key_cannot_change_the_submissions_file(
    s3, bucket, api, django_capture_on_commit_callbacks
) -> None:
    """The target stays valid for DIRECT_UPLOAD_EXPIRE after the claim: its owner can POST to
    the direct key again. The submission's file is a copy under a name no target can write,
    so it keeps the content and size that were checked (and that its tasks read)."""
    upload = target(api)
    assert post_to_storage(upload, MP4).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert create(api, upload["upload_key"]).status_code == 201
    sub = Submission.objects.get()

    other = b"\x00\x00\x00\x18ftypisom" + b"\x01" * 5000
    assert post_to_storage(upload, other).status_code == 204  # the same, still valid target
    assert read_back(s3, bucket, upload["upload_key"]) == other  # it did land (control)

    sub.refresh_from_db()
    assert read_back(s3, bucket, sub.file.name) == MP4
    assert sub.file_size == len(MP4) == sub.file.size
    # nor can it become a second submission
    refused(create(api, upload["upload_key"]), "upload_key", "in use by a submission already")
    assert Submission.objects.count() == 1


def test_a_file_replaced_between_the_check_and_the_copy_is_not_taken(
    s3, bucket, api, monkeypatch
) -> None:
    """The copy takes the version the HEAD checked (CopySourceIfMatch on its ETag), or none."""
    upload = target(api)
    assert post_to_storage(upload, MP4).status_code == 204
    real_copy = direct_uploads.copy_to_final

    def replaced_first(stored: direct_uploads.StoredUpload, final: str) -> None:
        assert post_to_storage(upload, b"\x00" * 3000).status_code == 204
        real_copy(stored, final)

    monkeypatch.setattr(direct_uploads, "copy_to_final", replaced_first)
    refused(create(api, upload["upload_key"]), "upload_key", "uploaded again while")
    nothing_created()
    assert s3.keys(bucket) == [upload["upload_key"]]
    monkeypatch.setattr(direct_uploads, "copy_to_final", real_copy)
    assert create(api, upload["upload_key"]).status_code == 201  # positive control
    assert Submission.objects.get().file_size == 3000


def test_a_crash_between_the_copy_and_the_row_loses_nothing(
    s3, bucket, api, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The copy is made, then the process dies before the row: no submission, the copy is an
    orphan that prune --orphans deletes once an hour old, and the key can be claimed again (to
    a new name: the orphan copy is never overwritten while a prune may be deleting it)."""
    key = uploaded(api)
    real_copy = direct_uploads.copy_to_final

    def copy_then_crash(stored: direct_uploads.StoredUpload, final: str) -> None:
        real_copy(stored, final)
        raise RuntimeError("the web worker died here")

    monkeypatch.setattr(direct_uploads, "copy_to_final", copy_then_crash)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        create(api, key)
    nothing_created()
    copy = f"tapestry_media/uploads/{direct_uploads.claimed_id(key)}/clip.mp4"
    assert s3.keys(bucket) == sorted([copy, key])  # the direct object is kept

    # the age rule: young files are no orphans yet; an hour on, both are
    assert orphans.find() == []
    an_hour_on = timezone.now() + orphans.MIN_AGE + timedelta(minutes=1)
    with monkeypatch.context() as later:
        later.setattr(orphans.timezone, "now", lambda: an_hour_on)
        assert {o.name for o in orphans.find()} == {copy, key}

    monkeypatch.setattr(direct_uploads, "copy_to_final", real_copy)
    with django_capture_on_commit_callbacks(execute=True):
        assert create(api, key).status_code == 201  # the client's retry
    sub = Submission.objects.get()
    assert sub.file.name != copy
    assert sub.file.name.startswith(f"tapestry_media/uploads/{sub.public_id}/clip_")
    assert read_back(s3, bucket, sub.file.name) == MP4
    with monkeypatch.context() as later:
        later.setattr(orphans.timezone, "now", lambda: an_hour_on)
        assert [o.name for o in orphans.find()] == [copy]
        call_command("tapestry_media", "prune", "--orphans", stdout=io.StringIO())
    assert s3.keys(bucket) == [sub.file.name]


def test_a_row_refused_after_the_copy_deletes_the_copy(s3, bucket, api, monkeypatch) -> None:
    key = uploaded(api)

    def refuse(submission: Submission) -> None:
        raise ValidationError({"metadata": "a step refuses it"})

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "check_upload_metadata", refuse)
        refused(create(api, key), "metadata", "a step refuses it")
    nothing_created()
    assert s3.keys(bucket) == [key]  # no copy left; the direct object kept
    assert create(api, key).status_code == 201  # positive control
    assert len(s3.keys(bucket)) == 2


# --- the storage does not answer -------------------------------------------------------------


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def storage_down(responses: Any) -> None:
    assert responses.status_code == 503, responses.content
    assert responses.json()["error"]["kind"] == "storage_unavailable"
    assert "nothing was created" in responses.json()["error"]["message"]
    assert responses["Retry-After"] == "30"


def test_storage_not_answering_the_check_is_a_503_with_retry_after(
    s3, bucket, api, settings
) -> None:
    key = uploaded(api)
    settings.AWS_S3_ENDPOINT_URL = closed_port()
    settings.STORAGES = {**settings.STORAGES}  # a new storage object on the new endpoint
    storage_down(create(api, key))
    nothing_created()
    settings.AWS_S3_ENDPOINT_URL = s3.endpoint
    settings.STORAGES = {**settings.STORAGES}
    assert create(api, key).status_code == 201  # positive control: the same request


def test_storage_failing_the_copy_is_a_503_and_creates_nothing(s3, bucket, api) -> None:
    key = uploaded(api)
    s3.fail_when = lambda method, path, headers: "x-amz-copy-source" in headers
    try:
        storage_down(create(api, key))
    finally:
        s3.fail_when = None
    nothing_created()
    assert s3.keys(bucket) == [key]
    assert create(api, key).status_code == 201  # positive control


@pytest.mark.parametrize(
    "make_key",
    [
        lambda key: key.replace("/direct/", "/"),
        lambda key: "tapestry_media/outputs/" + key.split("/direct/")[1],
        lambda key: key.rsplit("/", 1)[0] + "/../../../../outputs/clip.mp4",
        lambda key: key.rsplit("/", 1)[0] + "/..",
        lambda key: "/" + key,
        lambda key: key + "/",
        lambda key: key.rsplit("/", 2)[0] + "/short/clip.mp4",
        lambda key: "../" + key,
    ],
    ids=["no-direct", "outputs", "traversal", "dotdot", "absolute", "slash", "token", "up"],
)
def test_a_key_outside_the_direct_uploads_is_refused(s3, bucket, api, make_key) -> None:
    key = uploaded(api)
    refused(create(api, make_key(key)), "upload_key", "not an upload key this server issued")
    nothing_created()
    assert create(api, key).status_code == 201


def test_a_forged_key_for_an_object_stored_by_someone_else_is_refused(
    s3, bucket, api, user, other_user
) -> None:
    """The owner part is an HMAC under SECRET_KEY: a client cannot derive another user's, and
    guessing the format is not enough."""
    theirs = uploaded(client_for(other_user))
    mine = theirs.split("/")
    mine[3] = "0" * len(mine[3])
    refused(create(api, "/".join(mine)), "upload_key", "not one of your uploads")
    mine[3] = direct_uploads.owner_segment(user.pk)
    refused(create(api, "/".join(mine)), "upload_key", "no uploaded file")  # not theirs either
    nothing_created()


def test_file_or_key_not_both(s3, bucket, api) -> None:
    key = uploaded(api)
    both = api.post(SUBMISSIONS, {"upload_key": key, "file": video_upload()}, format="multipart")
    refused(both, "file", "one of the two")
    refused(api.post(SUBMISSIONS, {"title": "x"}, format="json"), "file", "one of the two")
    nothing_created()


def test_erasing_a_user_deletes_their_direct_uploads_claimed_or_not(
    s3, bucket, api, user, other_user, django_capture_on_commit_callbacks
) -> None:
    upload = target(api)
    claimed, unclaimed = upload["upload_key"], uploaded(api)
    assert post_to_storage(upload, MP4).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert create(api, claimed).status_code == 201
    final = Submission.objects.get().file.name
    claimed_again = post_to_storage(upload, MP4)  # after the claim: a direct object again
    theirs = uploaded(client_for(other_user))
    assert s3.keys(bucket) == sorted([final, claimed, unclaimed, theirs])  # positive control
    with django_capture_on_commit_callbacks(execute=True):
        report = erasure.erase(erasure.resolve_user(str(user.pk)))
    assert claimed_again.status_code == 204
    assert set(report.files) == {final, claimed, unclaimed}
    assert s3.keys(bucket) == [theirs]
    assert Submission.objects.count() == 0


# --- without a storage that presigns ----------------------------------------------------------


def test_without_presigning_the_target_is_a_clear_404_and_multipart_works(
    api, django_capture_on_commit_callbacks
) -> None:
    response = api.post(TARGETS, {"filename": "clip.mp4"}, format="json")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["kind"] == "direct_uploads_unavailable"
    assert "multipart" in error["message"]
    refused(create(api, "tapestry_media/uploads/direct/x/y/clip.mp4"), "upload_key", "file")
    nothing_created()
    with django_capture_on_commit_callbacks(execute=True):
        plain = api.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert plain.status_code == 201


def test_direct_uploads_can_be_switched_off(s3, bucket, api, settings) -> None:
    assert target(api)["upload_key"]
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "DIRECT_UPLOADS": False}
    response = api.post(TARGETS, {"filename": "clip.mp4"}, format="json")
    assert response.status_code == 404


def test_anonymous_gets_no_target(client) -> None:
    assert client.post(TARGETS, {"filename": "clip.mp4"}).status_code == 403


# --- the example site's upload form -----------------------------------------------------------


def test_the_example_upload_form_goes_direct_only_with_a_storage_that_presigns(
    client, user, settings, s3
) -> None:
    use_example_site(settings)
    client.force_login(user)
    plain = client.get(reverse("example:upload")).content.decode()
    assert 'enctype="multipart/form-data"' in plain
    assert "data-direct-upload" not in plain
    assert "example/upload.js" not in plain

    use_s3(settings, s3, s3.new_bucket(), expire=300)
    direct = client.get(reverse("example:upload")).content.decode()
    assert f'data-direct-upload="{TARGETS}"' in direct
    assert f'data-submissions-api="{SUBMISSIONS}"' in direct
    assert "example/upload.js" in direct
    assert 'type="file"' in direct  # the same form still works without JavaScript
    assert "<progress" in direct

    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "DIRECT_UPLOADS": False}
    assert "data-direct-upload" not in client.get(reverse("example:upload")).content.decode()


def test_the_example_submission_page_says_processing_started_after_a_direct_upload(
    client, user, settings, s3, bucket
) -> None:
    """upload.js goes to the page with ``?uploaded``: the same message as the plain form's
    redirect, then the page's own URL (a reload does not say it again)."""
    use_example_site(settings)
    client.force_login(user)
    assert create(client_for(user), uploaded(client_for(user))).status_code == 201
    page = reverse("example:submission", args=[Submission.objects.get().public_id])
    response = client.get(page + "?uploaded")
    assert response.status_code == 302
    assert response["Location"] == page
    assert "Processing has started" in client.get(page).content.decode()
    assert "Processing has started" not in client.get(page).content.decode()


# --- two claims of one key at once (PostgreSQL, MariaDB: row locks) ---------------------------


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_two_claims_of_one_key_at_once_make_one_submission(
    s3, bucket, user, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """Both requests pass every check before either writes. Each waits (up to 2 s) after its
    "is the key unused?" query for the other to ask too: without the lock on the user's row
    both hear "unused" and both create; with it the second asks only once the first has
    committed, and gets the 400."""
    key = uploaded(client_for(user))
    asked = threading.Barrier(2, timeout=2)
    real_exists = QuerySet.exists

    def exists_then_wait(self: QuerySet[Any]) -> bool:
        answer = real_exists(self)
        if self.model is Submission:
            with contextlib.suppress(threading.BrokenBarrierError):
                asked.wait()
        return answer

    monkeypatch.setattr(QuerySet, "exists", exists_then_wait)
    codes: list[int] = []

    def claim() -> None:
        try:
            codes.append(create(client_for(user), key).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [201, 400]
    sub = Submission.objects.get()
    assert sub.public_id == direct_uploads.claimed_id(key)
    assert Task.objects.count() == 2
    assert s3.keys(bucket) == [sub.file.name]  # one copy; the loser copied nothing
