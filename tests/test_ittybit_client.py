"""IttybitBackend against the in-process contract server: real HTTP, no mocked ``requests``."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tapestry_media.backends.base import (
    AuthenticationError,
    PermanentBackendError,
    TaskSpec,
    TransientBackendError,
)
from tapestry_media.backends.ittybit import IttybitBackend
from tapestry_media.conf import Settings
from tapestry_media.remote import RemoteTask
from tapestry_media.status import Status
from tapestry_media.testing.contract_server import (
    DEFAULT_API_KEY,
    ContractServer,
    Fault,
    http_date,
)

SEED_BODY = {
    "input": "https://tapestry-app.com/submissions/video-9182.mov",
    "kind": "video",
    "options": {"width": 1280, "format": "mp4"},
    "metadata": {"user_id": "usr_abc123", "submission_id": "sub_9182", "campaign": "summer-launch"},
}
SPEC = TaskSpec(
    input=SEED_BODY["input"],
    kind="video",
    options={"width": 1280, "format": "mp4"},
    metadata=dict(SEED_BODY["metadata"]),
)
KEY = "0f8e2a41c6d94b7e9a5b3c1d2e4f6a80"  # a Task uuid's hex: 32 characters
NOW = 1_736_935_200.5  # 2025-01-15T10:00:00.5Z


@pytest.fixture
def sleeps() -> list[float]:
    return []


MakeBackend = Callable[..., IttybitBackend]


@pytest.fixture
def make_backend(contract_server: ContractServer, sleeps: list[float]) -> Iterator[MakeBackend]:
    """``make_backend(HTTP_RETRIES=1, ..., sleep=..., clock=...)``: settings as keyword
    arguments in capitals, backend arguments in lower case. The sleeper records by default."""
    made: list[IttybitBackend] = []

    def make(**kwargs: Any) -> IttybitBackend:
        config = Settings(
            API_KEY=DEFAULT_API_KEY,
            API_BASE_URL=contract_server.url,
            CONNECT_TIMEOUT=1.0,
            READ_TIMEOUT=2.0,
            HTTP_RETRIES=3,
            HTTP_BACKOFF_FACTOR=0.5,
            HTTP_BACKOFF_MAX=30.0,
        )
        config = replace(config, **{k: v for k, v in kwargs.items() if k.isupper()})
        options = {"sleep": sleeps.append, "jitter": 0.0}
        options.update({k: v for k, v in kwargs.items() if not k.isupper()})
        backend = IttybitBackend(config, **options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: MakeBackend) -> IttybitBackend:
    return make_backend()


# --- the create request -----------------------------------------------------------------------


def test_create_sends_the_seed_body_with_bearer_and_idempotency_key(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    task = backend.create(SPEC, idempotency_key=KEY)

    request = contract_server.last_request
    assert (request.method, request.path, request.status) == ("POST", "/tasks", 201)
    assert request.json == SEED_BODY
    assert request.header("Authorization") == f"Bearer {DEFAULT_API_KEY}"
    assert request.header("Idempotency-Key") == KEY
    assert request.header("Content-Type") == "application/json"
    assert request.header("Accept") == "application/json"
    assert (request.header("User-Agent") or "").startswith("tapestry-media/")
    assert request.header("Accept-Version") is None
    assert task.id == contract_server.task_ids[0]
    assert task.status == Status.PENDING
    assert task.metadata == SEED_BODY["metadata"]


def test_the_sdk_version_refuses_the_seed_body_so_the_tasks_mode_sends_none(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    # An explicit API_VERSION is sent as it is; 2025-08-20's POST /tasks takes url/file_id.
    with pytest.raises(PermanentBackendError) as caught:
        make_backend(API_VERSION="2025-08-20").create(SPEC, idempotency_key=KEY)
    assert contract_server.last_request.header("Accept-Version") == "2025-08-20"
    assert caught.value.status_code == 400
    assert "'url' or 'file_id'" in caught.value.message
    # the default ("auto") sends no version with the seed's body, and it is taken
    make_backend().create(SPEC, idempotency_key=KEY)
    assert contract_server.last_request.header("Accept-Version") is None
    assert contract_server.last_request.status == 201


def test_jobs_mode_posts_the_seed_body_to_jobs_with_its_version(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    backend = make_backend(
        API_MODE="jobs", WEBHOOK_URL="https://tapestry-app.com/media/webhooks/ittybit/"
    )
    job = backend.create(SPEC, idempotency_key=KEY)

    request = contract_server.last_request
    assert (request.method, request.path, request.status) == ("POST", "/jobs", 201)
    assert request.json == SEED_BODY  # exactly the seed's body: no webhook_url
    assert request.header("Accept-Version") == "latest"
    assert request.header("Idempotency-Key") == KEY
    assert job.id.startswith("job_")
    assert (job.status, job.raw_status) == (Status.PENDING, "queued")
    assert job.metadata == SEED_BODY["metadata"]


def test_jobs_mode_gets_the_job_with_its_url_output_and_ms_timestamps(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    backend = make_backend(API_MODE="jobs")
    job_id = backend.create(SPEC, idempotency_key=KEY).id
    shown = contract_server.complete(job_id, deliver=False)

    job = backend.get(job_id)

    assert contract_server.last_request.path == f"/jobs/{job_id}"
    assert job.status == Status.SUCCEEDED
    assert job.output_url == shown["output"]
    assert job.finished_at == datetime.fromtimestamp(shown["finished_at"] / 1000, tz=UTC)


def test_jobs_mode_without_a_version_when_told(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    make_backend(API_MODE="jobs", API_VERSION="").create(SPEC, idempotency_key=KEY)
    assert contract_server.last_request.header("Accept-Version") is None


def test_webhook_url_from_settings_when_the_spec_has_none(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    backend = make_backend(WEBHOOK_URL="https://tapestry-app.com/media/webhooks/ittybit/")
    backend.create(SPEC, idempotency_key=KEY)
    assert contract_server.last_request.json == {
        **SEED_BODY,
        "webhook_url": "https://tapestry-app.com/media/webhooks/ittybit/",
    }

    own = replace(SPEC, webhook_url="https://other.example/hook/")
    backend.create(own, idempotency_key=KEY[::-1])
    assert contract_server.last_request.json["webhook_url"] == "https://other.example/hook/"


def test_replayed_key_returns_the_same_task(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    first = backend.create(SPEC, idempotency_key=KEY)
    second = backend.create(SPEC, idempotency_key=KEY)
    assert first.id == second.id
    assert contract_server.tasks_created == 1
    assert [r.status for r in contract_server.requests] == [201, 200]


@pytest.mark.parametrize("key", ["short", "x" * 33, "has a space in it!!", "ü" * 20, ""])
def test_bad_idempotency_key_is_refused_before_any_request(
    backend: IttybitBackend, contract_server: ContractServer, key: str
) -> None:
    with pytest.raises(ValueError, match="Idempotency-Key"):
        backend.create(SPEC, idempotency_key=key)
    assert contract_server.requests == []


def test_connections_are_pooled(backend: IttybitBackend, contract_server: ContractServer) -> None:
    task = backend.create(SPEC, idempotency_key=KEY)
    for _ in range(4):
        backend.get(task.id)
    assert len({r.client for r in contract_server.requests}) == 1


def test_concurrent_creates_share_one_backend(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def submit(key: str) -> None:
        task = backend.create(SPEC, idempotency_key=key)
        with lock:
            results.append(task.id)

    threads = [threading.Thread(target=submit, args=(f"{i:02d}-{KEY[3:]}",)) for i in range(8)]
    threads += [threading.Thread(target=submit, args=(KEY,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12
    assert contract_server.tasks_created == 9  # 8 distinct keys + 1 shared key


# --- get --------------------------------------------------------------------------------------


def test_get_returns_the_current_state(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    task = backend.create(SPEC, idempotency_key=KEY)
    contract_server.complete(task.id)

    fetched = backend.get(task.id)
    assert fetched.status == Status.SUCCEEDED
    assert fetched.output_url == f"https://cdn.example.test/{task.id}.mp4"
    assert fetched.metadata == SEED_BODY["metadata"]
    assert (contract_server.last_request.method, contract_server.last_request.path) == (
        "GET",
        f"/tasks/{task.id}",
    )


def test_get_quotes_the_id(backend: IttybitBackend, contract_server: ContractServer) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        backend.get("task/../x?y")
    assert contract_server.last_request.path == "/tasks/task%2F..%2Fx%3Fy"
    assert caught.value.status_code == 404
    assert caught.value.kind == "not_found"


def test_jobs_path_is_a_setting(make_backend: MakeBackend, contract_server: ContractServer) -> None:
    task = make_backend(TASKS_PATH="/jobs").create(SPEC, idempotency_key=KEY)
    assert contract_server.last_request.path == "/jobs"
    assert task.raw["object"] == "job"


# --- retries ----------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    contract_server.inject(Fault.rate_limited(retry_after=2))
    task = backend.create(SPEC, idempotency_key=KEY)
    assert sleeps == [2.0]
    assert [r.status for r in contract_server.requests] == [429, 201]
    assert contract_server.task_ids == [task.id]


def test_429_retry_after_http_date_is_honoured(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(clock=lambda: NOW)
    retry_at = http_date(1_736_935_208)  # "Wed, 15 Jan 2025 10:00:08 GMT"; NOW is 10:00:00.5
    contract_server.inject(Fault.rate_limited(retry_after=retry_at))
    backend.create(SPEC, idempotency_key=KEY)
    assert retry_at == "Wed, 15 Jan 2025 10:00:08 GMT"
    assert sleeps == [7.5]


def test_5xx_backs_off_exponentially(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    contract_server.inject(Fault.error(500), Fault.error(502), Fault.unavailable())
    task = backend.create(SPEC, idempotency_key=KEY)
    assert sleeps == [0.5, 1.0, 2.0]
    assert [r.status for r in contract_server.requests] == [500, 502, 503, 201]
    assert contract_server.task_ids == [task.id]


def test_backoff_is_capped(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(HTTP_BACKOFF_FACTOR=10.0, HTTP_BACKOFF_MAX=15.0)
    contract_server.inject(Fault.error(503, times=3))
    backend.create(SPEC, idempotency_key=KEY)
    assert sleeps == [10.0, 15.0, 15.0]


def test_jitter_is_added_from_the_injected_random(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    draws = iter([0.5, 0.25])
    backend = make_backend(jitter=0.4, random=lambda: next(draws))
    contract_server.inject(Fault.error(503, times=2))
    backend.create(SPEC, idempotency_key=KEY)
    assert sleeps == pytest.approx([0.5 + 0.2, 1.0 + 0.1])


def test_default_jitter_varies_the_delays(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(jitter=None)  # HTTP_BACKOFF_FACTOR's worth of jitter
    contract_server.inject(Fault.error(503, times=3))
    backend.create(SPEC, idempotency_key=KEY)
    assert len(sleeps) == 3
    for delay, base in zip(sleeps, [0.5, 1.0, 2.0], strict=True):
        assert base <= delay < base + 0.5


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float], status: int
) -> None:
    contract_server.inject(Fault.error(status))
    backend.create(SPEC, idempotency_key=KEY)
    assert [r.status for r in contract_server.requests] == [status, 201]
    assert sleeps == [0.5]


def test_retries_spent_raise_transient_with_details(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(HTTP_RETRIES=2)
    contract_server.inject(Fault.unavailable(times=None, message="maintenance window"))
    with pytest.raises(TransientBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    error = caught.value
    assert error.retryable
    assert (error.status_code, error.kind) == (503, "server_error")
    assert "maintenance window" in error.message
    assert "after 3 attempts" in error.message
    assert contract_server.count("POST", "/tasks") == 3
    assert sleeps == [0.5, 1.0]


def test_rate_limit_spent_carries_retry_after(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(HTTP_RETRIES=1)
    contract_server.inject(Fault.rate_limited(retry_after=3, times=None))
    with pytest.raises(TransientBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert (caught.value.status_code, caught.value.kind) == (429, "rate_limited")
    assert caught.value.retry_after == 3.0
    assert sleeps == [3.0]


def test_retry_after_beyond_the_cap_is_left_to_the_caller(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    contract_server.inject(Fault.rate_limited(retry_after=120))
    with pytest.raises(TransientBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert caught.value.retry_after == 120.0
    assert sleeps == []
    assert contract_server.count() == 1


def test_unreadable_retry_after_falls_back_to_backoff(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    contract_server.inject(Fault.rate_limited(retry_after="soon-ish"))
    backend.create(SPEC, idempotency_key=KEY)
    assert sleeps == [0.5]


# --- "created, then ..." ----------------------------------------------------------------------


def test_created_then_reset_ends_with_one_task(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    contract_server.inject(Fault.created_then_reset())
    task = backend.create(SPEC, idempotency_key=KEY)
    assert contract_server.tasks_created == 1
    assert contract_server.task_ids == [task.id]
    assert [r.status for r in contract_server.requests] == [None, 200]  # reset, then the replay
    assert sleeps == [0.5]


def test_created_then_500_ends_with_one_task(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    contract_server.inject(Fault.created_then_error(500))
    task = backend.create(SPEC, idempotency_key=KEY)
    assert contract_server.tasks_created == 1
    assert contract_server.task_ids == [task.id]
    assert [r.status for r in contract_server.requests] == [500, 200]


def test_created_then_read_timeout_ends_with_one_task(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    backend = make_backend(READ_TIMEOUT=0.2)
    contract_server.inject(Fault.created_then_slow(1.0))
    task = backend.create(SPEC, idempotency_key=KEY)
    assert contract_server.task_ids == [task.id]
    assert contract_server.count("POST", "/tasks", 200) == 1


def test_retry_while_the_first_is_in_flight_gets_409_then_the_task(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    # The first request holds the key for 0.6 s; the client gives up after 0.2 s and retries
    # (really sleeping) into "409 idempotency in flight" until the task exists.
    backend = make_backend(
        READ_TIMEOUT=0.2, HTTP_RETRIES=8, HTTP_BACKOFF_FACTOR=0.1, HTTP_BACKOFF_MAX=0.4,
        sleep=time.sleep,
    )  # fmt: skip
    contract_server.inject(Fault.slow(0.6, stage="processing", method="POST"))
    task = backend.create(SPEC, idempotency_key=KEY)
    assert contract_server.task_ids == [task.id]
    assert contract_server.count("POST", status=409) >= 1
    assert contract_server.count("POST", status=200) == 1


# --- errors that are not retried --------------------------------------------------------------


def test_400_is_not_retried_and_surfaces_kind_and_message(
    backend: IttybitBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(replace(SPEC, kind=""), idempotency_key=KEY)
    error = caught.value
    assert not error.retryable
    assert (error.status_code, error.kind, error.message) == (
        400,
        "request_invalid",
        "'kind' is required.",
    )
    assert contract_server.count() == 1
    assert sleeps == []


def test_422_metadata_rejected_by_the_server(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    too_many = {f"k{i}": "v" for i in range(33)}
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(replace(SPEC, metadata=too_many), idempotency_key=KEY)
    assert caught.value.status_code == 422
    assert "at most 32" in caught.value.message
    assert contract_server.count() == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "request_invalid"), (402, "payment_required"), (403, "forbidden"), (404, "not_found")],
)
def test_permanent_statuses_are_not_retried(
    backend: IttybitBackend,
    contract_server: ContractServer,
    sleeps: list[float],
    status: int,
    kind: str,
) -> None:
    contract_server.inject(Fault.error(status, message=f"refused with {status}"))
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert (caught.value.status_code, caught.value.kind) == (status, kind)
    assert caught.value.message == f"refused with {status}"
    assert contract_server.count() == 1
    assert sleeps == []


def test_401_says_the_key_is_wrong(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(API_KEY="key_revoked_0000")
    with pytest.raises(AuthenticationError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    error = caught.value
    assert isinstance(error, PermanentBackendError)
    assert error.status_code == 401
    assert error.kind == "authentication_invalid"
    assert "rejected the API key" in error.message
    assert "TAPESTRY_MEDIA['API_KEY']" in error.message
    assert "key_revoked_0000" not in str(error)
    assert contract_server.count() == 1
    assert sleeps == []


def test_missing_api_key_fails_without_a_request(
    make_backend: MakeBackend, contract_server: ContractServer
) -> None:
    with pytest.raises(AuthenticationError, match=r"TAPESTRY_MEDIA\['API_KEY'\]"):
        make_backend(API_KEY="").get("task_1")
    assert contract_server.requests == []


@pytest.mark.parametrize("shape", ["kind", "message", "nested", "text", "html"])
def test_every_error_body_shape_is_surfaced(
    backend: IttybitBackend, contract_server: ContractServer, shape: Any
) -> None:
    contract_server.inject(
        Fault.error(422, kind="options_invalid", message="width < 0", error_shape=shape)
    )
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    error = caught.value
    # only the newest shape carries a kind; the others get the status's default
    assert error.kind == ("options_invalid" if shape == "kind" else "request_invalid")
    if shape == "html":
        assert error.message.endswith("width < 0")
        assert "<" not in error.message.replace("width < 0", "")
    else:
        assert error.message == "width < 0"


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (b'{"kind":"options_invalid","message":"codec vp9 needs webm"}', "options_invalid",
         "codec vp9 needs webm"),
        (b'{"meta":{"id":"req_1"},"data":null,"error":{"message":"old shape"}}', "request_invalid",
         "old shape"),
        (b'{"error":{"kind":"quota","message":"nested kind"}}', "quota", "nested kind"),
        (b"", "request_invalid", "HTTP 422 Unprocessable"),
    ],
)  # fmt: skip
def test_raw_error_bodies(
    backend: IttybitBackend, contract_server: ContractServer, body: bytes, kind: str, message: str
) -> None:
    contract_server.inject(Fault.error(422, body=body))
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert caught.value.kind == kind
    assert caught.value.message.startswith(message)


def test_a_redirect_is_not_followed(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    contract_server.inject(Fault.error(302, body=b"", content_type="text/plain"))
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert caught.value.kind == "unexpected_redirect"
    assert "API_BASE_URL" in caught.value.message
    assert contract_server.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>OK</body></html>",
        b'{"ok":true}',
        b'{"id":"task_1"}',
        b"[]",
        # A task PostgreSQL could not store (jsonb refuses NaN and U+0000): refused here, not
        # at the database in the middle of a submit or poll job.
        b'{"id":"task_1","status":"succeeded","output":{"url":"https://x.test/a","d":NaN}}',
        b'{"id":"task_1","status":"pending","metadata":{"k":"a\\u0000b"}}',
    ],
)
def test_a_2xx_that_is_not_a_task_is_transient(
    backend: IttybitBackend, contract_server: ContractServer, body: bytes
) -> None:
    contract_server.inject(Fault(status=201, body=body, method="POST"))
    with pytest.raises(TransientBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert (caught.value.kind, caught.value.status_code) == ("bad_response", 201)
    assert contract_server.count() == 1


def test_a_task_with_unparseable_fields_is_a_backend_error(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    # remote.parse_task raises OverflowError on ``"progress": Infinity`` (reported); whatever
    # it does, the client answers with a task or a BackendError, never a raw exception.
    contract_server.transform = lambda body: {**body, "progress": float("inf")}
    outcome: RemoteTask | TransientBackendError
    try:
        outcome = backend.get(contract_server.add_task())
    except TransientBackendError as exc:
        outcome = exc
    if isinstance(outcome, TransientBackendError):
        assert outcome.kind == "bad_response"
    else:
        assert outcome.progress in (None, 100)


# --- transport errors -------------------------------------------------------------------------


def test_read_timeout_is_transient(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(READ_TIMEOUT=0.2, HTTP_RETRIES=1)
    task_id = contract_server.add_task()
    contract_server.inject(Fault.slow(1.0, method="GET", times=2))
    started = time.monotonic()
    with pytest.raises(TransientBackendError) as caught:
        backend.get(task_id)
    assert time.monotonic() - started < 0.9
    assert caught.value.kind == "timeout"
    assert contract_server.count("GET") == 2
    assert sleeps == [0.5]


def test_connection_reset_is_retried_then_transient(
    make_backend: MakeBackend, contract_server: ContractServer, sleeps: list[float]
) -> None:
    backend = make_backend(HTTP_RETRIES=2)
    contract_server.inject(Fault.reset_connection(times=None))
    with pytest.raises(TransientBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY)
    assert caught.value.kind == "connection_error"
    assert contract_server.count("POST") == 3
    assert contract_server.tasks_created == 0
    assert sleeps == [0.5, 1.0]


def test_connection_refused_is_transient(make_backend: MakeBackend, sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    backend = make_backend(API_BASE_URL=f"http://127.0.0.1:{closed_port}", HTTP_RETRIES=2)
    with pytest.raises(TransientBackendError) as caught:
        backend.get("task_1")
    assert caught.value.kind == "connection_error"
    assert sleeps == [0.5, 1.0]


def test_the_api_key_is_never_logged(
    make_backend: MakeBackend, contract_server: ContractServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = make_backend(HTTP_RETRIES=1)
    contract_server.inject(Fault.error(500))
    backend.create(SPEC, idempotency_key=KEY)
    contract_server.inject(Fault.error(400))
    with pytest.raises(PermanentBackendError) as caught:
        backend.create(SPEC, idempotency_key=KEY[::-1])
    assert caplog.records  # urllib3 and the backend did log
    assert DEFAULT_API_KEY not in caplog.text
    assert DEFAULT_API_KEY not in str(caught.value)
    assert DEFAULT_API_KEY not in repr(backend.session.auth)


# --- every response shape in the contract parses ----------------------------------------------


@pytest.mark.parametrize(
    ("timestamps", "expected"),
    [
        ("iso", datetime(2025, 1, 15, 10, 0, 0, 500000, tzinfo=UTC)),
        ("seconds", datetime(2025, 1, 15, 10, 0, 0, tzinfo=UTC)),
        ("ms", datetime(2025, 1, 15, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("shape", ["bare", "envelope"])
def test_response_shapes_and_timestamps(
    backend: IttybitBackend,
    contract_server: ContractServer,
    shape: Any,
    timestamps: Any,
    expected: datetime,
) -> None:
    contract_server.shape, contract_server.timestamps, contract_server.clock = (
        shape,
        timestamps,
        lambda: NOW,
    )
    created = backend.create(SPEC, idempotency_key=KEY)
    assert created.created_at == expected
    assert created.metadata == SEED_BODY["metadata"]

    contract_server.complete(created.id)
    done = backend.get(created.id)
    assert done.status == Status.SUCCEEDED
    assert done.finished_at == expected
    assert done.updated_at == expected


@pytest.mark.parametrize("output_style", ["object", "string", "list"])
def test_output_styles(
    backend: IttybitBackend, contract_server: ContractServer, output_style: Any
) -> None:
    contract_server.output_style = output_style
    task_id = contract_server.add_task()
    contract_server.complete(task_id)
    task = backend.get(task_id)
    assert task.output_url == f"https://cdn.example.test/{task_id}.mp4"
    assert task.output is not None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("waiting", Status.PENDING),
        ("queued", Status.PENDING),
        ("validating", Status.PENDING),
        ("running", Status.PROCESSING),
        ("finishing", Status.PROCESSING),
        ("completed", Status.SUCCEEDED),
        ("ready", Status.SUCCEEDED),
        ("error", Status.FAILED),
        ("canceled", Status.CANCELLED),
        ("cancelled", Status.CANCELLED),
    ],
)
def test_raw_statuses_normalise(
    backend: IttybitBackend, contract_server: ContractServer, raw: str, status: Status
) -> None:
    task_id = contract_server.add_task(status=raw)
    task = backend.get(task_id)
    assert (task.status, task.raw_status) == (status, raw)


def test_unknown_status_does_not_crash(
    backend: IttybitBackend, contract_server: ContractServer
) -> None:
    task_id = contract_server.add_task(status="rendering_in_4d", progress=42)
    task = backend.get(task_id)
    assert task.status is None
    assert task.raw_status == "rendering_in_4d"
    assert task.raw["status"] == "rendering_in_4d"
    assert task.progress == 42


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("decoder gave up", {"kind": "", "message": "decoder gave up"}),
        ({"kind": "input_invalid", "message": "not a video"}, {"kind": "input_invalid",
                                                               "message": "not a video"}),
    ],
)  # fmt: skip
def test_failed_task_errors(
    backend: IttybitBackend, contract_server: ContractServer, error: Any, expected: dict[str, str]
) -> None:
    task_id = contract_server.add_task()
    contract_server.fail(task_id, error=error)
    task = backend.get(task_id)
    assert task.status == Status.FAILED
    assert task.error == expected


def test_unknown_fields_are_kept(backend: IttybitBackend, contract_server: ContractServer) -> None:
    contract_server.transform = lambda body: {**body, "results": {"labels": ["cat"]}, "x_new": 1}
    task = backend.get(contract_server.add_task())
    assert task.raw["results"] == {"labels": ["cat"]}
    assert task.raw["x_new"] == 1
