"""Admin: changelists, metadata search, read-only details and actions that only enqueue jobs."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tapestry_media import pipeline
from tapestry_media.models import (
    ErasureRequest,
    Submission,
    SubmissionStatus,
    Task,
    WebhookEvent,
)
from tapestry_media.status import Status
from tapestry_media.testing.jobs import enqueued, enqueued_names

from .helpers import make_user, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network")]

SUBMISSIONS = reverse("admin:tapestry_media_submission_changelist")
TASKS = reverse("admin:tapestry_media_task_changelist")
EVENTS = reverse("admin:tapestry_media_webhookevent_changelist")


def shown(response) -> list:
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def act(client, url: str, action: str, objects) -> object:
    return client.post(
        url,
        {"action": action, "_selected_action": [str(o.pk) for o in objects]},
        follow=True,
    )


# --- search and filters -----------------------------------------------------------------------


def test_task_search_by_user_id_is_exact(admin_client, user, other_user) -> None:
    mine = upload(user)
    upload(other_user)
    rows = shown(admin_client.get(TASKS, {"q": f"usr_{user.pk}"}))
    assert {t.submission_id for t in rows} == {mine.pk}
    assert len(rows) == 2
    # exact, not a prefix: usr_1 must not find usr_12
    assert shown(admin_client.get(TASKS, {"q": f"usr_{user.pk}"[:-1] + "9999"})) == []


def test_task_search_by_key_value_remote_id_and_uuid(admin_client, user) -> None:
    upload(user)
    api_task = pipeline.submit(
        input="https://example.com/a.mov", kind="video", metadata={"order_id": "A-1"}
    )
    assert shown(admin_client.get(TASKS, {"q": "order_id=A-1"})) == [api_task]
    assert shown(admin_client.get(TASKS, {"q": "A-1"})) == [api_task]  # a seed key, bare
    assert shown(admin_client.get(TASKS, {"q": "order_id=A-2"})) == []
    Task.objects.filter(pk=api_task.pk).update(remote_id="task_remote_77")
    assert shown(admin_client.get(TASKS, {"q": "task_remote_77"})) == [api_task]
    assert shown(admin_client.get(TASKS, {"q": str(api_task.uuid)})) == [api_task]
    # a term that cannot be a metadata pair is no error
    assert shown(admin_client.get(TASKS, {"q": "bad key=1"})) == []


def test_submission_search_by_metadata_public_id_and_uploader(admin_client, user, other_user):
    mine = upload(user, campaign="spring")
    theirs = upload(other_user, campaign="autumn")
    assert shown(admin_client.get(SUBMISSIONS, {"q": f"usr_{user.pk}"})) == [mine]
    assert shown(admin_client.get(SUBMISSIONS, {"q": theirs.public_id})) == [theirs]
    assert shown(admin_client.get(SUBMISSIONS, {"q": "BOB"})) == [theirs]
    assert shown(admin_client.get(SUBMISSIONS, {"q": "campaign=spring"})) == [mine]


def test_filters(admin_client, user) -> None:
    spring = upload(user, campaign="spring")
    upload(user, campaign="autumn")
    Submission.objects.filter(pk=spring.pk).update(status=SubmissionStatus.FAILED)
    assert shown(admin_client.get(SUBMISSIONS, {"status__exact": "failed"})) == [spring]
    assert shown(admin_client.get(SUBMISSIONS, {"campaign": "spring"})) == [spring]
    tasks = shown(admin_client.get(TASKS, {"campaign": "spring"}))
    assert {t.submission_id for t in tasks} == {spring.pk}
    assert len(shown(admin_client.get(TASKS, {"kind": "image"}))) == 2
    assert len(shown(admin_client.get(TASKS, {"backend": "dummy"}))) == 4
    assert shown(admin_client.get(TASKS, {"backend": "ittybit"})) == []
    page = admin_client.get(TASKS).content.decode()
    assert "?campaign=spring" in page
    assert "?campaign=autumn" in page


def test_task_changelist_columns_come_from_metadata(admin_client, user) -> None:
    sub = upload(user)
    page = admin_client.get(TASKS).content.decode()
    assert f"usr_{user.pk}" in page
    assert sub.public_id in page
    assert reverse("admin:tapestry_media_submission_change", args=[sub.pk]) in page
    assert "tm-badge" in page


# --- details ----------------------------------------------------------------------------------


def test_task_detail_shows_pretty_json_and_attempt_history(admin_client, user) -> None:
    sub = upload(user)
    task = sub.tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(
        status=Status.FAILED, error={"kind": "request_invalid", "message": "bad <input>"}
    )
    pipeline.start_new_attempt(task.pk)
    page = admin_client.get(reverse("admin:tapestry_media_task_change", args=[task.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert '<pre class="tm-json">' in text
    assert "&quot;width&quot;: 1280" in text  # options, indented JSON, escaped
    assert "bad &lt;input&gt;" in text  # the earlier attempt's error, escaped
    assert "&quot;attempt&quot;: 1" in text


def test_submission_detail_inlines_current_tasks_with_previews(admin_client, user) -> None:
    sub = upload(user)
    video = sub.tasks.get(name="video")
    Task.objects.filter(pk=video.pk).update(
        status=Status.SUCCEEDED, output_url="https://cdn.example.com/out.mp4", progress=100
    )
    poster = sub.tasks.get(name="poster")
    Task.objects.filter(pk=poster.pk).update(
        status=Status.SUCCEEDED, output_url="https://cdn.example.com/poster.jpg"
    )
    stale = Task.objects.create(
        submission=sub, generation=5, name="old", kind="video", input="x", backend="dummy"
    )
    text = admin_client.get(
        reverse("admin:tapestry_media_submission_change", args=[sub.pk])
    ).content.decode()
    assert (
        '<video class="tm-preview" controls preload="metadata" src="https://cdn.example.com/out.mp4"'
        ' poster="https://cdn.example.com/poster.jpg"' in text
    )
    assert '<img class="tm-preview" src="https://cdn.example.com/poster.jpg"' in text
    task_page = admin_client.get(reverse("admin:tapestry_media_task_change", args=[video.pk]))
    assert 'poster="https://cdn.example.com/poster.jpg"' in task_page.content.decode()
    assert "100%" in text
    assert reverse("admin:tapestry_media_task_change", args=[stale.pk]) not in text
    assert reverse("admin:tapestry_media_task_change", args=[video.pk]) in text


def test_webhook_events_are_read_only(admin_client) -> None:
    event = WebhookEvent.objects.create(dedup_key="k", remote_task_id="task_1", body="{}")
    change = reverse("admin:tapestry_media_webhookevent_change", args=[event.pk])
    assert admin_client.get(reverse("admin:tapestry_media_webhookevent_add")).status_code == 403
    assert admin_client.get(change).status_code == 200  # view only
    assert admin_client.post(change, {"body": "changed"}).status_code == 403
    delete = reverse("admin:tapestry_media_webhookevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.body == "{}"


# --- actions ----------------------------------------------------------------------------------


def test_retry_action_starts_a_new_attempt(
    admin_client, user, django_capture_on_commit_callbacks
) -> None:
    sub = upload(user)
    failed, running = sub.tasks.order_by("pk")
    Task.objects.filter(pk=failed.pk).update(status=Status.FAILED, remote_id="task_old")
    Task.objects.filter(pk=running.pk).update(status=Status.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, TASKS, "retry_action", [failed, running])
    assert enqueued_names() == ["submit_task"]
    assert enqueued()[0].args == [failed.pk]
    failed.refresh_from_db()
    running.refresh_from_db()
    assert (failed.status, failed.attempt, failed.remote_id) == (Status.CREATED, 2, None)
    assert failed.attempts[0]["remote_id"] == "task_old"
    assert running.status == Status.PROCESSING  # not failed: left alone
    text = response.content.decode()
    assert "1 retried" in text
    assert "1 skipped" in text


def test_resubmit_action_starts_a_new_file_generation(
    admin_client, user, django_capture_on_commit_callbacks
) -> None:
    sub = upload(user)
    old = list(sub.tasks.order_by("pk"))
    Task.objects.filter(pk=old[0].pk).update(status=Status.SUCCEEDED)
    Submission.objects.filter(pk=sub.pk).update(status=SubmissionStatus.PARTIAL)
    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, SUBMISSIONS, "resubmit_action", [sub])
    sub.refresh_from_db()
    assert sub.file_generation == 1
    assert sub.status == SubmissionStatus.PENDING
    current = list(sub.current_tasks().order_by("pk"))
    assert [t.name for t in current] == ["video", "poster"]
    assert {t.uuid for t in current}.isdisjoint({t.uuid for t in old})
    assert enqueued_names() == ["submit_task", "submit_task"]
    assert sorted(r.args[0] for r in enqueued()) == sorted(t.pk for t in current)
    statuses = dict(Task.objects.filter(generation=0).values_list("pk", "status"))
    assert statuses == {old[0].pk: Status.SUCCEEDED, old[1].pk: Status.SUPERSEDED}
    # the same file: nothing was copied
    assert sub.file.name == Submission.objects.get(pk=sub.pk).file.name


def _resync_job_name() -> str:
    from tapestry_media import jobs

    return jobs.poll_task.name


def _at_the_api(tasks) -> None:
    for n, task in enumerate(tasks):
        Task.objects.filter(pk=task.pk).update(status=Status.PENDING, remote_id=f"task_r{n}")


def test_task_resync_action_enqueues_poll_jobs(admin_client, user) -> None:
    sub = upload(user)
    tasks = list(sub.tasks.order_by("pk"))
    _at_the_api(tasks)
    unsent = pipeline.submit(input="https://example.com/a.mov", kind="video")
    response = act(admin_client, TASKS, "resync_action", [*tasks, unsent])
    assert enqueued_names() == [_resync_job_name()] * 2
    assert sorted(r.args[0] for r in enqueued()) == sorted(t.pk for t in tasks)
    text = response.content.decode()
    assert "2 resync jobs queued" in text
    assert "1 skipped" in text


def test_submission_resync_action_enqueues_current_tasks_only(admin_client, user) -> None:
    sub = upload(user)
    _at_the_api(sub.tasks.all())
    old = Task.objects.create(
        submission=sub, generation=7, name="old", kind="video", input="x", backend="dummy"
    )
    Task.objects.filter(pk=old.pk).update(status=Status.PENDING, remote_id="task_old")
    act(admin_client, SUBMISSIONS, "resync_action", [sub])
    assert enqueued_names() == [_resync_job_name()] * 2
    assert old.pk not in {r.args[0] for r in enqueued()}


def test_reprocess_action_reapplies_the_stored_body(admin_client, user) -> None:
    sub = upload(user)
    task = sub.tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(status=Status.PENDING, remote_id="task_abc123")
    body = {
        "id": "task_abc123",
        "status": "succeeded",
        "metadata": task.metadata,
        "output": {"url": "https://cdn.example.com/v.mp4"},
    }
    event = WebhookEvent.objects.create(
        dedup_key="sha256:x",
        remote_task_id="task_abc123",
        raw_status="succeeded",
        body=json.dumps(body),
        error="OperationalError: database was locked",
    )
    response = act(admin_client, EVENTS, "reprocess_action", [event])
    assert "1 reprocessed (applied)" in response.content.decode()
    task.refresh_from_db()
    event.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert task.output_url == "https://cdn.example.com/v.mp4"
    assert (event.task_id, event.error) == (task.pk, "")
    assert event.processed_at is not None
    # the same event again changes nothing
    response = act(admin_client, EVENTS, "reprocess_action", [event])
    assert "1 reprocessed (stale)" in response.content.decode()


def test_reprocess_reports_an_unparseable_body(admin_client) -> None:
    event = WebhookEvent.objects.create(dedup_key="k", remote_task_id="t", body="not json")
    response = act(admin_client, EVENTS, "reprocess_action", [event])
    assert f"Event {event.pk}: the body is not valid JSON" in response.content.decode()
    event.refresh_from_db()
    assert event.error.startswith("unparseable")


def test_event_state_filter(admin_client, user) -> None:
    task = upload(user).tasks.first()
    matched = WebhookEvent.objects.create(dedup_key="a", remote_task_id="t1", body="{}", task=task)
    unmatched = WebhookEvent.objects.create(dedup_key="b", remote_task_id="t2", body="{}")
    broken = WebhookEvent.objects.create(dedup_key="c", remote_task_id="t3", body="{}", error="x")
    assert shown(admin_client.get(EVENTS, {"state": "matched"})) == [matched]
    assert set(shown(admin_client.get(EVENTS, {"state": "unmatched"}))) == {unmatched, broken}
    assert shown(admin_client.get(EVENTS, {"state": "error"})) == [broken]


def test_progress_ticks_are_hidden_unless_asked(admin_client) -> None:
    def event(key: str, raw_status: str, error: str = "") -> WebhookEvent:
        return WebhookEvent.objects.create(
            dedup_key=key, remote_task_id="t1", raw_status=raw_status, body="{}", error=error
        )

    ticks = [event(f"tick{n}", status) for n, status in enumerate(["processing", "Running"])]
    done = event("done", "succeeded")
    queued = event("queued", "queued")
    broken_tick = event("broken", "processing", error="RuntimeError: x")
    page = admin_client.get(EVENTS)
    assert set(shown(page)) == {done, queued, broken_tick}
    assert "Hidden" in page.content.decode()
    shown_all = admin_client.get(EVENTS, {"ticks": "shown"})
    assert set(shown(shown_all)) == {*ticks, done, queued, broken_tick}


def test_event_search_and_topic_filter(admin_client) -> None:
    envelope = WebhookEvent.objects.create(
        dedup_key="event:evt_1",
        event_id="evt_1",
        remote_task_id="task_9",
        topic="task.failed",
        body="{}",
    )
    bare = WebhookEvent.objects.create(
        dedup_key="sha256:b", remote_task_id="task_8", topic="task.succeeded", body="{}"
    )
    assert shown(admin_client.get(EVENTS, {"q": "evt_1"})) == [envelope]
    assert shown(admin_client.get(EVENTS, {"q": "task_8"})) == [bare]
    assert shown(admin_client.get(EVENTS, {"q": "task"})) == []  # exact, not a substring
    assert shown(admin_client.get(EVENTS, {"topic": "task.failed"})) == [envelope]


def test_staff_without_change_permission_cannot_act(client, django_user_model, user) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_task", "view_submission"])
    )
    client.force_login(viewer)
    sub = upload(user)
    task = sub.tasks.first()
    Task.objects.filter(pk=task.pk).update(status=Status.FAILED)
    response = client.post(TASKS, {"action": "retry_action", "_selected_action": [task.pk]})
    assert response.status_code in (200, 302)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert enqueued() == []


# --- query counts -----------------------------------------------------------------------------


def populate(django_user_model, start: int, count: int) -> None:
    for n in range(start, start + count):
        uploader = make_user(f"u{n}", email=f"u{n}@example.com")
        sub = upload(uploader, campaign=f"c{n % 3}")
        task = sub.tasks.get(name="video")
        Task.objects.filter(pk=task.pk).update(
            status=Status.SUCCEEDED, output_url=f"https://cdn.example.com/{n}.mp4"
        )
        WebhookEvent.objects.create(
            dedup_key=f"d{n}", remote_task_id=f"t{n}", body="{}", task=task if n % 2 else None
        )


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", [SUBMISSIONS, TASKS, EVENTS])
def test_changelist_queries_do_not_grow_with_rows(admin_client, django_user_model, url) -> None:
    populate(django_user_model, 0, 5)
    admin_client.get(url)  # warm caches (session, content types)
    small = queries(admin_client, url)
    populate(django_user_model, 5, 45)
    large = queries(admin_client, url)
    rows = len(admin_client.get(url).context["cl"].result_list)
    assert rows == (100 if url == TASKS else 50)
    assert small == large, (small, large)


def test_erase_confirmation_page_queries_do_not_grow_with_the_uploaders_data(
    admin_client, user
) -> None:
    """The page counts each uploader's own rows by their foreign keys; it does not run the
    erasure's dry run, which reads every row of the app's tables (webhook events included)."""
    first = upload(user)
    form = {"action": "erase_uploaders", "_selected_action": [str(first.pk)]}

    def confirm(submissions: int) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            page = admin_client.post(SUBMISSIONS, form)
        assert page.status_code == 200
        assert f"<td>{submissions}</td><td>{2 * submissions}</td>" in page.content.decode()
        return [q["sql"] for q in ctx.captured_queries]

    admin_client.post(SUBMISSIONS, form)  # warm caches (session, content types)
    WebhookEvent.objects.create(dedup_key="d1", remote_task_id="t1", body="{}")
    small = confirm(1)
    for _ in range(19):
        upload(user)
    large = confirm(20)
    assert len(small) == len(large), (small, large)
    assert not [sql for sql in large if "tapestry_media_webhookevent" in sql]
    assert Submission.objects.filter(uploader=user).count() == 20  # asked, nothing erased
    assert "erase_user" not in enqueued_names()


@pytest.mark.django_db(transaction=True)  # the action's on_commit runs as in production
def test_an_erasure_that_cannot_be_queued_is_told_and_logged_naming_no_one(
    admin_client, user, monkeypatch, caplog
) -> None:
    from tapestry_media import enqueue

    class Refusing:
        def enqueue(self, user_pk: str) -> None:
            raise ConnectionError(f"broker down, job erase_user({user_pk!r}) lost")

    monkeypatch.setattr(enqueue, "_bound", lambda path: Refusing())
    sub = upload(user)
    form = {"action": "erase_uploaders", "_selected_action": [str(sub.pk)], "post": "yes"}
    done = admin_client.post(SUBMISSIONS, form, follow=True)
    text = done.content.decode()
    assert "1 erasure could not be queued (the log says why)" in text
    assert "resync queues it again" in text
    assert "is queued" not in text
    assert "is requested" not in text
    assert Submission.objects.filter(uploader=user).exists()
    # the request stays, never queued, for resync
    assert list(ErasureRequest.objects.values_list("user_pk", "enqueued_at")) == [
        (str(user.pk), None)
    ]
    records = [r for r in caplog.records if r.name.startswith("tapestry_media")]
    assert [r.getMessage() for r in records] == [
        "could not enqueue an erasure (ConnectionError): nothing erased yet, resync queues it again"
    ]
    assert str(user.pk) not in repr([(r.getMessage(), r.args, r.exc_info) for r in records])


def test_pending_erasures_are_listed_read_only(admin_client, user) -> None:
    from django.contrib.admin.sites import site

    ErasureRequest.objects.create(user_pk=str(user.pk))
    page = admin_client.get(reverse("admin:tapestry_media_erasurerequest_changelist"))
    assert page.status_code == 200
    assert [str(r.user_pk) for r in page.context["cl"].result_list] == [str(user.pk)]
    model_admin = site._registry[ErasureRequest]
    request = page.wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert admin_client.get(reverse("admin:tapestry_media_erasurerequest_add")).status_code == 403


@pytest.mark.django_db(transaction=True)  # the action's on_commit runs as in production
def test_a_queued_erasure_is_told_and_stamped(admin_client, user) -> None:
    sub = upload(user)
    form = {"action": "erase_uploaders", "_selected_action": [str(sub.pk)], "post": "yes"}
    text = admin_client.post(SUBMISSIONS, form, follow=True).content.decode()
    assert "The erasure of 1 uploader&#x27;s data is queued" in text
    assert "could not" not in text
    assert enqueued_names()[-1] == "erase_user"
    assert ErasureRequest.objects.get(user_pk=str(user.pk)).enqueued_at is not None
