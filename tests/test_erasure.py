"""Erasure on request: after ``erase``, no tapestry_media table and no stored file holds a trace
of the user; another user's rows and files are untouched but for the erased user's identifiers.

The world is made by the real local engine (real ffmpeg, results through the webhook path), so
the rows and files are the ones production writes."""

from __future__ import annotations

import json
import logging
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

import tapestry_media
from tapestry_media import erasure, erasure_jobs, receivers
from tapestry_media.enqueue import ERASE_JOB
from tapestry_media.models import ErasureRequest, LocalJob, Submission, Task, WebhookEvent
from tapestry_media.testing.jobs import enqueued, enqueued_names, run_jobs

from .helpers import app_alias, integer_pks, local_engine_settings, make_user
from .media import clip_upload, make_clip

pytestmark = [pytest.mark.django_db]

# With integer pks, usr_7 is a prefix of usr_77: the scrub must tell them apart. A host's own
# user model (tests.settings_custom_user) has UUID pks and logs in by e-mail.
ERIN, BOB = 7, 77


@pytest.fixture(autouse=True)
def local_backend(settings) -> None:
    settings.TAPESTRY_MEDIA = local_engine_settings(settings.TAPESTRY_MEDIA, width=96, poster_at=0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=1, size="160x120")


def run_all(capture) -> None:
    with capture(execute=True):
        run_jobs()
    while enqueued_names():
        with capture(execute=True):
            run_jobs()


class World:
    def __init__(self, erin, bob, erin_subs, bob_sub, api_task) -> None:
        self.erin, self.bob = erin, bob
        self.erin_id, self.bob_id = f"usr_{erin.pk}", f"usr_{bob.pk}"
        self.erin_login = erin.get_username()
        self.erin_subs, self.bob_sub, self.api_task = erin_subs, bob_sub, api_task

    def traces(self, user, submissions, extra_tasks=()) -> set[str]:
        """Every identifier of ``user`` the rows and files may hold."""
        found = {f"usr_{user.pk}", user.get_username(), user.email}
        tasks = [t for s in submissions for t in Task.objects.filter(submission=s)]
        tasks += list(extra_tasks)
        for sub in submissions:
            found |= {sub.public_id, sub.file.name, Path(sub.file.name).stem}
        for task in tasks:
            task.refresh_from_db()
            found |= {str(task.uuid), task.remote_id, task.output["storage_name"]}
        return found


@pytest.fixture
def world(clip, django_capture_on_commit_callbacks) -> World:
    erin_pk, bob_pk = ({"id": ERIN}, {"id": BOB}) if integer_pks() else ({}, {})
    erin = make_user("erin-k7", email="erin.k7@example.org", password="pw", **erin_pk)
    bob = make_user("bob-q2", email="bob.q2@example.org", password="pw", **bob_pk)
    erin_login, bob_login = erin.get_username(), bob.get_username()
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        erin_subs = [
            Submission.objects.create(
                uploader=erin, file=clip_upload(clip, "erin-holiday.mp4"), campaign="spring",
                metadata={"display_name": erin_login},
            ),
            Submission.objects.create(uploader=erin, file=clip_upload(clip, "erin-cat.mp4")),
        ]  # fmt: skip
        # A host's note on bob's upload names erin: her identifiers are scrubbed from it.
        bob_sub = Submission.objects.create(
            uploader=bob, file=clip_upload(clip, "bob-garden.mp4"), campaign="spring",
            metadata={"reviewer": erin_login, "reviewer_email": "erin.k7@example.org",
                      "reviewer_id": f"usr_{erin.pk}", "display_name": bob_login,
                      "contact": "bob.q2@example.org"},
        )  # fmt: skip
    run_all(capture)
    with capture(execute=True):
        api_task = tapestry_media.submit(
            input=erin_subs[0].file.name, kind="image", options={"format": "png"},
            created_by=erin, metadata={"order_id": "A-1"},
        )  # fmt: skip
    run_all(capture)
    # A cloud result of erin's claiming bob's upload as its stored output: not trusted, so the
    # file is not deleted (nor is its name taken for one of erin's).
    Task.objects.create(
        created_by=erin, backend="dummy", kind="video", input="https://example.invalid/v.mp4",
        status="succeeded", remote_id="task_cloud_1", output={"storage_name": bob_sub.file.name},
    )  # fmt: skip
    # Deliveries for tasks nobody knows yet (kept "to be matched later"): erin's goes; bob's,
    # which mentions erin, stays with her identifiers scrubbed.
    for rid, metadata in (
        ("task_gone_1", {"user_id": f"usr_{erin.pk}"}),
        ("task_gone_2", {"user_id": f"usr_{bob.pk}", "note": f"shared by usr_{erin.pk}",
                         "cc": "erin.k7@example.org"}),
    ):  # fmt: skip
        body = {"id": rid, "status": "failed", "metadata": metadata}
        WebhookEvent.objects.create(
            dedup_key=f"test:{rid}", remote_task_id=rid, body=json.dumps(body),
            processed_at=timezone.now(),
        )  # fmt: skip
    for sub in (*erin_subs, bob_sub):
        assert set(sub.tasks.values_list("status", flat=True)) == {"succeeded"}
    return World(erin, bob, erin_subs, bob_sub, api_task)


def dump() -> str:
    """Every column of every row of every tapestry_media table, as text."""
    lines = []
    connection = connections[app_alias()]
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            if not table.startswith("tapestry_media_"):
                continue
            # the table names come from the database itself
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            lines += [f"{table}: " + " | ".join(map(str, row)) for row in cursor.fetchall()]
    return "\n".join(lines)


def added_rows(before: str, after: str) -> list[str]:
    """The rows of ``after`` not in ``before``."""
    old = set(before.splitlines())
    return [line for line in after.splitlines() if line not in old]


def stored() -> dict[str, bytes]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def present(traces: set[str], dumped: str, files: dict[str, bytes]) -> set[str]:
    """The traces found anywhere in the text, except as the start of a longer word (``usr_7``
    in bob's ``usr_77``)."""
    text = dumped + "\n" + "\n".join(files)
    return {t for t in traces if re.search(re.escape(t) + r"(?!\w)", text)}


@pytest.fixture
def erase(django_capture_on_commit_callbacks):
    """``manage.py tapestry_media erase …``, its after-commit file deletion run."""

    def run(*args: str) -> str:
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("tapestry_media", "erase", *args, stdout=out)
        return out.getvalue()

    return run


def test_erase_leaves_no_trace_of_the_user_and_keeps_everyone_else(world, erase) -> None:
    erin_traces = world.traces(world.erin, world.erin_subs, [world.api_task])
    bob_traces = world.traces(world.bob, [world.bob_sub])
    before, files_before = dump(), stored()
    # Positive control: every trace is there to be found, in the rows or the storage listing.
    assert present(erin_traces, before, files_before) == erin_traces
    assert present(bob_traces, before, files_before) == bob_traces
    assert world.erin_id in before
    assert world.bob_id in before
    erin_files = {
        name: data
        for name, data in files_before.items()
        if any(rid in name for rid in erin_traces) and name not in bob_traces
    }
    bob_files = {n: d for n, d in files_before.items() if n not in erin_files}
    assert len(erin_files) == 2 + 4 + 1  # two uploads, two tasks each, the API task
    assert len(bob_files) == 3

    dry = erase("--user", world.erin_login, "--dry-run")
    assert f"{world.erin_id}: 2 submission(s), 6 task(s), 5 local engine job(s), " in dry
    assert f"7 file(s), {sum(map(len, erin_files.values()))} bytes would be deleted" in dry
    assert "(dry run)" in dry
    assert dump() == before
    assert stored() == files_before

    out = erase("--user", world.erin_login)
    assert f"7 file(s), {sum(map(len, erin_files.values()))} bytes deleted" in out
    after, files_after = dump(), stored()
    assert present(erin_traces, after, files_after) == set()
    assert not Submission.objects.filter(uploader=world.erin).exists()
    assert not Task.objects.filter(created_by=world.erin).exists()
    assert "task_cloud_1" not in after

    # bob: every row and file still there, his own identifiers untouched.
    assert files_after == bob_files
    assert present(bob_traces, after, files_after) == bob_traces
    world.bob_sub.refresh_from_db()
    assert world.bob_sub.metadata == {
        "reviewer": "[erased]", "reviewer_email": "[erased]", "reviewer_id": "[erased]",
        "display_name": world.bob.get_username(), "contact": "bob.q2@example.org",
    }  # fmt: skip
    video = world.bob_sub.tasks.get(name="video")
    assert video.metadata["user_id"] == world.bob_id
    assert video.metadata["reviewer"] == "[erased]"
    assert video.status == "succeeded"
    events = WebhookEvent.objects.filter(task=video)
    assert events.exists()
    for event in events:
        echoed = json.loads(event.body)["data"]["metadata"]
        assert echoed["reviewer"] == echoed["reviewer_email"] == "[erased]"
        assert echoed["user_id"] == world.bob_id
    kept = json.loads(WebhookEvent.objects.get(remote_task_id="task_gone_2").body)
    assert kept["metadata"] == {
        "user_id": world.bob_id, "note": "shared by [erased]", "cc": "[erased]"
    }  # fmt: skip
    assert not WebhookEvent.objects.filter(remote_task_id="task_gone_1").exists()
    assert LocalJob.objects.filter(remote_id=video.remote_id).exists()

    # Running it again finds nothing more.
    again = erase("--user", str(world.erin.pk))
    assert "0 submission(s), 0 task(s), 0 local engine job(s), 0 webhook event(s)" in again
    assert "0 file(s), 0 bytes deleted; rows scrubbed: none" in again
    assert dump() == after


def test_a_deleted_users_uploads_are_found_by_their_user_id(world, erase) -> None:
    """The host deleted erin first (her uploads keep ``uploader`` NULL): ``--user 7`` finds them
    by the ``usr_7`` their tasks carry."""
    traces = world.traces(world.erin, world.erin_subs, [world.api_task]) - {world.erin_login}
    pk = world.erin.pk
    world.erin.delete()
    assert Submission.objects.filter(uploader=None).count() == 2
    out = erase("--user", str(pk))
    assert f"no user has pk {pk} any more" in out
    # erin's cloud task has no link to her any more (created_by NULL, no user_id): it stays
    assert f"{world.erin_id}: 2 submission(s), 5 task(s)" in out
    # the username and email are not known any more; every other trace is gone
    assert present(traces - {"erin.k7@example.org"}, dump(), stored()) == set()
    assert Submission.objects.count() == 1


def test_unknown_user_is_a_clear_error_and_changes_nothing(world, erase) -> None:
    before, files = dump(), stored()
    with pytest.raises(CommandError, match="no user has the username or pk 'nobody'"):
        erase("--user", "nobody")
    assert dump() == before
    assert stored() == files


def test_admin_action_asks_then_queues_the_erasure_only_for_those_allowed(
    world, client, django_capture_on_commit_callbacks
) -> None:
    from django.contrib.auth.models import Permission

    changelist = reverse("admin:tapestry_media_submission_changelist")
    sub = world.erin_subs[0]
    form = {"action": "erase_uploaders", "_selected_action": [sub.pk]}
    staff = make_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="tapestry_media",
            codename__in=["view_submission", "change_submission", "delete_submission"],
        )
    )
    client.force_login(staff)
    response = client.post(changelist, form, follow=True)
    assert response.status_code == 200
    assert "erase_uploaders" not in response.content.decode()  # not offered to this user
    assert Submission.objects.filter(uploader=world.erin).count() == 2

    traces = world.traces(world.erin, world.erin_subs, [world.api_task])
    before, files_before = dump(), stored()
    assert present(traces, before, files_before) == traces  # positive control
    admin_user = make_user("root", password="pw", superuser=True)
    client.force_login(admin_user)
    page = client.post(changelist, form)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Erase the uploaders" in text
    assert f"{world.erin_login} ({world.erin_id})" in text
    # her submissions; their four tasks and the two she created through the API
    assert "<td>2</td><td>6</td>" in text
    assert "erase --user &lt;pk&gt; --dry-run" in text
    assert dump() == before  # asked, not done

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(changelist, {**form, "post": "yes"}, follow=True)
    assert done.status_code == 200
    # the test's transaction defers the enqueue past the response, as ATOMIC_REQUESTS would
    assert "The erasure of 1 uploader&#x27;s data is requested" in done.content.decode()
    (job,) = enqueued()
    assert (job.task.module_path, list(job.args)) == (ERASE_JOB, [str(world.erin.pk)])
    # queued, not done: every row and file is still there until the job runs, and the
    # pending request beside them
    (added,) = added_rows(before, dump())
    assert added.startswith("tapestry_media_erasurerequest: ")
    assert f" | {world.erin.pk} | " in added
    assert stored() == files_before

    run_all(django_capture_on_commit_callbacks)
    assert present(traces, dump(), stored()) == set()
    assert "tapestry_media_erasurerequest" not in dump()  # done: the request went with the rows
    assert not Submission.objects.filter(uploader=world.erin).exists()
    assert Submission.objects.filter(uploader=world.bob).count() == 1


def test_the_admin_action_erases_the_uploader_not_a_user_whose_login_is_their_pk(
    world, client, django_capture_on_commit_callbacks
) -> None:
    """The action knows the uploaders' pks: it must not look them up as logins."""
    login = str(world.erin.pk)
    namesake = make_user(login, email=login, password="pw")
    assert namesake.get_username() == login
    client.force_login(make_user("root", password="pw", superuser=True))
    form = {"action": "erase_uploaders", "_selected_action": [world.erin_subs[0].pk], "post": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:tapestry_media_submission_changelist"), form, follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        (counts,) = run_jobs()
    assert counts.startswith("2 submission(s), 6 task(s)")
    assert not Submission.objects.filter(uploader=world.erin).exists()
    assert Submission.objects.filter(uploader=world.bob).count() == 1


def test_the_erase_job_run_twice_erases_once(world, django_capture_on_commit_callbacks) -> None:
    """A retried job (the worker died after the commit) finds nothing left; the pk comes as
    text, read back by the user model's pk field (a UUID with tests.settings_custom_user)."""
    traces = world.traces(world.erin, world.erin_subs, [world.api_task])
    assert present(traces, dump(), stored()) == traces
    with django_capture_on_commit_callbacks(execute=True):
        first = erasure_jobs.erase_user.call(str(world.erin.pk))
    after, files_after = dump(), stored()
    assert first.startswith("2 submission(s), 6 task(s)")
    assert present(traces, after, files_after) == set()
    with django_capture_on_commit_callbacks(execute=True):
        second = erasure_jobs.erase_user.call(str(world.erin.pk))
    assert second.startswith("0 submission(s), 0 task(s), 0 local engine job(s)")
    assert "rows scrubbed: none" in second
    assert dump() == after
    assert stored() == files_after
    assert world.erin_id not in first + second  # the return value a backend keeps names no one


def test_an_erasure_that_could_not_be_queued_is_finished_by_resync(
    world, client, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The broker is down when the operator confirms: nothing is erased, the request stays,
    never queued; resync queues it again, and once the job has run nothing is left of the
    user, the request included."""
    from tapestry_media import enqueue

    traces = world.traces(world.erin, world.erin_subs, [world.api_task])
    before, files_before = dump(), stored()
    bound = enqueue._bound

    def refusing(path: str):
        if path == ERASE_JOB:
            raise ConnectionError("broker down")
        return bound(path)

    monkeypatch.setattr(enqueue, "_bound", refusing)
    client.force_login(make_user("root", password="pw", superuser=True))
    form = {"action": "erase_uploaders", "_selected_action": [world.erin_subs[0].pk], "post": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("admin:tapestry_media_submission_changelist"), form, follow=True)
    assert "The erasure of 1 uploader&#x27;s data is requested" in done.content.decode()
    assert enqueued_names() == []
    assert list(ErasureRequest.objects.values_list("user_pk", "enqueued_at")) == [
        (str(world.erin.pk), None)
    ]
    (added,) = added_rows(before, dump())  # nothing erased: the request is all that changed
    assert added.startswith("tapestry_media_erasurerequest: ")
    assert stored() == files_before

    monkeypatch.setattr(enqueue, "_bound", bound)  # the broker is back
    out = StringIO()
    call_command("tapestry_media", "resync", stdout=out)
    assert "pending erasures: 1 queued again" in out.getvalue()
    assert ErasureRequest.objects.get().enqueued_at is not None
    assert [list(job.args) for job in enqueued() if job.task.module_path == ERASE_JOB] == [
        [str(world.erin.pk)]
    ]
    run_all(django_capture_on_commit_callbacks)
    assert not ErasureRequest.objects.exists()
    assert present(traces, dump(), stored()) == set()
    assert Submission.objects.filter(uploader=world.bob).count() == 1
    assert "pending erasures" not in command_output("resync")  # nothing left to queue


def command_output(*args: str) -> str:
    out = StringIO()
    call_command("tapestry_media", *args, stdout=out)
    return out.getvalue()


def test_token_pattern_matches_whole_tokens_only() -> None:
    pattern = erasure.token_pattern({"usr_7", "sub_ab"})
    assert pattern is not None
    text = "usr_7 usr_77 xusr_7 sub_ab/clip.mp4 sub_abc"
    assert pattern.sub("[x]", text) == "[x] usr_77 xusr_7 [x]/clip.mp4 sub_abc"


def test_anchors_skip_the_words_every_file_name_shares() -> None:
    """A row is scrubbed only if one of its words is an anchor: each needle's anchor must be a
    word of it that other rows do not share (``tapestry_media``, ``uploads``)."""
    name = "tapestry_media/uploads/sub_1f2e/erin-holiday.mp4"
    assert erasure.anchors({name, "usr_7", "erin.k7@example.org"}) == {"sub_1f2e", "usr_7", "erin"}
    pattern = erasure.token_pattern({name})
    assert pattern is not None
    row = f"https://cdn.test/media/{name}?sig=1"
    assert pattern.search(row)
    assert erasure.anchors({name}) <= set(re.findall(r"\w+", row))


class Refusing:
    """The default storage, but looking at one name and deleting another fail, with messages
    naming the file, as storages' errors do."""

    def __init__(self, storage, *, look: str, delete: str) -> None:
        self.storage, self.look, self.refused_delete = storage, look, delete
        self.raised: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self.storage, name)

    def exists(self, name: str) -> bool:
        if name == self.look:
            self.raised.append(name)
            raise SuspiciousFileOperation(f"{name} is outside the storage's root")
        return self.storage.exists(name)

    def delete(self, name: str) -> None:
        if name == self.refused_delete:
            self.raised.append(name)
            raise PermissionError(f"[Errno 13] Permission denied: '{name}'")
        self.storage.delete(name)


def test_the_logs_of_an_erasure_name_no_one(world, erase, caplog, monkeypatch) -> None:
    """After an erasure the app's log records (message, arguments, traceback) hold no
    identifier of the user: counts only, also when stored files cannot be looked at or
    deleted."""
    traces = world.traces(world.erin, world.erin_subs, [world.api_task])
    # Positive control: the user's pk token, username and file names are in the rows.
    assert present(traces, dump(), stored()) == traces
    assert {world.erin_id, world.erin_login, world.erin_subs[1].file.name} <= traces
    output = world.api_task.output["storage_name"]
    storage = Refusing(default_storage._wrapped, look=output, delete=world.erin_subs[1].file.name)
    monkeypatch.setattr(erasure, "default_storage", storage)
    monkeypatch.setattr(receivers, "default_storage", storage)  # the pre_delete receiver's
    caplog.set_level(logging.DEBUG)

    erase("--user", world.erin_login, "--dry-run")
    out = erase("--user", world.erin_login)

    assert f"{world.erin_id}: 2 submission(s)" in out  # the operator who asked is told whom
    assert present(traces, dump(), {}) == set()
    records = [r for r in caplog.records if r.name.startswith("tapestry_media")]
    formatter = logging.Formatter()
    for record in records:
        parts = [record.getMessage(), repr(record.args)]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        assert present(traces, "\n".join(parts), {}) == set(), parts
    messages = [r.getMessage() for r in records]
    looked = "erase: 1 stored file(s) could not be looked at and are left in place"
    assert f"{looked} (1 SuspiciousFileOperation)" in messages
    deleted = "erase: 1 stored file(s) could not be deleted (1 PermissionError)"
    assert any(m.startswith(deleted) for m in messages)
    assert any(m.startswith("erased a user's data: 2 submission(s), 6 task(s)") for m in messages)
    # Positive control: what failed said which file it was, so a leak would have shown.
    assert storage.raised == [output, output, world.erin_subs[1].file.name]
