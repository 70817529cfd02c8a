"""The contract server's own guarantees, checked with plain ``requests`` calls."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tapestry_media.remote import parse_event, parse_task
from tapestry_media.signatures import verify
from tapestry_media.testing.contract_server import (
    DEFAULT_API_KEY,
    DEFAULT_WEBHOOK_SECRET,
    ContractServer,
    Delivery,
    Fault,
    client_deliverer,
)

BODY = {
    "input": "https://tapestry-app.com/submissions/video-9182.mov",
    "kind": "video",
    "options": {"width": 1280, "format": "mp4"},
    "metadata": {"user_id": "usr_abc123", "submission_id": "sub_9182"},
}
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
KEY = "key-0000000000000001"


class Inbox:
    """A ``deliver`` callable that records what it received."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((url, body, headers))
        return self.status

    @property
    def statuses(self) -> list[str]:
        return [json.loads(body)["status"] for _, body, _ in self.received]


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def contract_server_options(inbox: Inbox) -> dict[str, Any]:
    return {"deliver": inbox}


def create(
    server: ContractServer, body: Any = None, key: str | None = KEY, **headers: str
) -> requests.Response:
    all_headers = {**AUTH, **headers}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    return requests.post(f"{server.url}/tasks", json=BODY if body is None else body,
                         headers=all_headers, timeout=5)  # fmt: skip


# --- create -----------------------------------------------------------------------------------


def test_create_then_replay(contract_server: ContractServer) -> None:
    first = create(contract_server)
    second = create(contract_server)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["metadata"] == BODY["metadata"]
    assert contract_server.tasks_created == 1
    assert contract_server.count("POST", "/tasks") == 2
    assert contract_server.counts()[("POST", "/tasks", 200)] == 1


def test_create_without_key_makes_a_new_task_each_time(contract_server: ContractServer) -> None:
    create(contract_server, key=None)
    create(contract_server, key=None)
    assert contract_server.tasks_created == 2


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"kind": "video"}, 400, "'input'"),
        ({"input": "https://x/y.mov"}, 400, "'kind'"),
        ([1, 2], 400, "JSON object"),
        ({**BODY, "options": "fast"}, 400, "'options'"),
        ({**BODY, "metadata": {"n": 1}}, 422, "must be a string"),
        ({**BODY, "metadata": {"bad-key": "v"}}, 422, "[A-Za-z0-9_]"),
        ({**BODY, "metadata": {"k": "v" * 2049}}, 422, "2048"),
        ({**BODY, "metadata": {f"k{i}": "v" for i in range(33)}}, 422, "at most 32"),
        ({**BODY, "webhook_url": "ftp://x"}, 422, "webhook_url"),
    ],
)
def test_create_validates_the_body(
    contract_server: ContractServer, body: Any, status: int, fragment: str
) -> None:
    response = create(contract_server, body)
    assert response.status_code == status
    assert response.json()["kind"] == "request_invalid"
    assert fragment in response.json()["message"]
    assert contract_server.tasks_created == 0


def test_metadata_at_the_limits_is_accepted(contract_server: ContractServer) -> None:
    metadata = {f"k{i:02d}" + "x" * 29: "v" * 2048 for i in range(32)}
    assert create(contract_server, {**BODY, "metadata": metadata}).status_code == 201


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Token {DEFAULT_API_KEY}"])
def test_wrong_key_is_401(contract_server: ContractServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(f"{contract_server.url}/tasks", json=BODY, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["kind"] == "authentication_invalid"


def test_bad_idempotency_key_is_400(contract_server: ContractServer) -> None:
    assert create(contract_server, key="short").status_code == 400


def test_concurrent_request_with_the_same_key_gets_409(contract_server: ContractServer) -> None:
    contract_server.inject(Fault.slow(0.5, stage="processing"))
    first: list[requests.Response] = []
    thread = threading.Thread(target=lambda: first.append(create(contract_server)))
    thread.start()
    time.sleep(0.15)
    second = create(contract_server)
    thread.join()
    assert second.status_code == 409
    assert second.json()["kind"] == "idempotency_in_flight"
    assert first[0].status_code == 201
    assert create(contract_server).status_code == 200
    assert contract_server.tasks_created == 1


# --- get and list -----------------------------------------------------------------------------


def test_get_and_404(contract_server: ContractServer) -> None:
    task_id = create(contract_server).json()["id"]
    assert requests.get(f"{contract_server.url}/tasks/{task_id}", headers=AUTH, timeout=5).json()[
        "id"
    ] == (task_id)
    missing = requests.get(f"{contract_server.url}/tasks/task_nope", headers=AUTH, timeout=5)
    assert (missing.status_code, missing.json()["kind"]) == (404, "not_found")


def test_list_pages_with_a_cursor(contract_server: ContractServer) -> None:
    ids = [contract_server.add_task(kind="video" if i % 2 else "image") for i in range(5)]

    def page(**params: Any) -> Any:
        return requests.get(
            f"{contract_server.url}/tasks", params=params, headers=AUTH, timeout=5
        ).json()

    first = page(limit=2)
    assert [t["id"] for t in first["data"]] == ids[:2]
    assert first["has_more"] is True
    second = page(limit=2, after=first["next_cursor"])
    assert [t["id"] for t in second["data"]] == ids[2:4]
    last = page(limit=2, after=second["next_cursor"])
    assert ([t["id"] for t in last["data"]], last["has_more"]) == (ids[4:], False)
    assert [t["id"] for t in page(page=2, limit=2)["data"]] == ids[2:4]
    assert [t["id"] for t in page(kind="image")["data"]] == ids[0::2]


def test_envelope_shape(contract_server: ContractServer) -> None:
    contract_server.shape = "envelope"
    body = create(contract_server).json()
    assert set(body) == {"meta", "data"}
    assert parse_task(body).id == body["data"]["id"]


def test_timestamp_styles(contract_server: ContractServer) -> None:
    contract_server.clock = lambda: 1_736_935_200.5
    task_id = contract_server.add_task()
    contract_server.timestamps = "iso"
    assert contract_server.task(task_id)["created_at"] == "2025-01-15T10:00:00.500Z"
    contract_server.timestamps = "seconds"
    assert contract_server.task(task_id)["created"] == 1_736_935_200
    contract_server.timestamps = "ms"
    assert contract_server.task(task_id)["created"] == 1_736_935_200_500


# --- faults -----------------------------------------------------------------------------------


def test_faults_are_consumed_in_order_and_by_match(contract_server: ContractServer) -> None:
    contract_server.inject(Fault.error(503, method="GET"), Fault.rate_limited(retry_after=4))
    limited = create(contract_server)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "4")
    assert create(contract_server).status_code == 201
    got = requests.get(f"{contract_server.url}/tasks/x", headers=AUTH, timeout=5)
    assert got.status_code == 503


def test_created_then_error_creates_the_task(contract_server: ContractServer) -> None:
    contract_server.inject(Fault.created_then_error(500))
    assert create(contract_server).status_code == 500
    assert contract_server.tasks_created == 1
    assert create(contract_server).status_code == 200


def test_created_then_reset_creates_the_task_and_sends_no_answer(
    contract_server: ContractServer,
) -> None:
    contract_server.inject(Fault.created_then_reset())
    with pytest.raises(requests.ConnectionError) as caught:
        create(contract_server)
    assert "reset" in str(caught.value).lower()
    assert contract_server.tasks_created == 1
    assert contract_server.last_request.status is None


def test_stop_wakes_slow_handlers() -> None:
    server = ContractServer().start()
    server.inject(Fault.slow(30))
    thread = threading.Thread(target=lambda: _swallow(lambda: create(server)), daemon=True)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()


def _swallow(call: Any) -> None:
    with contextlib.suppress(requests.RequestException):
        call()


# --- webhooks ---------------------------------------------------------------------------------


def test_completion_delivers_a_signed_bare_task(
    contract_server: ContractServer, inbox: Inbox
) -> None:
    task_id = create(contract_server).json()["id"]
    contract_server.complete(task_id)
    [(_, body, headers)] = inbox.received
    assert verify(headers, body, [DEFAULT_WEBHOOK_SECRET]) == "ittybit"
    task = parse_task(json.loads(body))
    assert (task.id, task.raw_status) == (task_id, "succeeded")
    assert task.metadata == BODY["metadata"]
    assert task.output_url.endswith(f"{task_id}.mp4")
    assert contract_server.webhooks_delivered == 1


def test_standard_webhooks_event_envelope(contract_server: ContractServer, inbox: Inbox) -> None:
    contract_server.webhook_scheme, contract_server.webhook_envelope = "standard", "event"
    task_id = contract_server.add_task()
    contract_server.fail(task_id, error={"kind": "input_invalid", "message": "no video stream"})
    [(_, body, headers)] = inbox.received
    assert verify(headers, body, [DEFAULT_WEBHOOK_SECRET]) == "standard"
    event = parse_event(json.loads(body))
    assert event.topic == "task.failed"
    assert event.id == headers["webhook-id"]
    assert event.task.error == {"kind": "input_invalid", "message": "no video stream"}


def test_webhook_url_per_task_or_per_server(contract_server: ContractServer, inbox: Inbox) -> None:
    contract_server.webhook_url = "https://server-wide.example/hook"
    own = create(contract_server, {**BODY, "webhook_url": "https://task.example/hook"}).json()["id"]
    other = contract_server.add_task()
    contract_server.complete(own)
    contract_server.complete(other)
    assert [url for url, _, _ in inbox.received] == [
        "https://task.example/hook",
        "https://server-wide.example/hook",
    ]


def test_webhook_faults_drop_duplicate_hold(contract_server: ContractServer, inbox: Inbox) -> None:
    task_id = contract_server.add_task()
    contract_server.inject_webhook("drop", "duplicate", "hold")
    contract_server.set_status(task_id, "processing")  # dropped
    contract_server.set_status(task_id, "processing", progress=50)  # sent twice
    contract_server.complete(task_id)  # held
    assert [d.state for d in contract_server.deliveries] == [
        "dropped",
        "delivered",
        "delivered",
        "held",
    ]
    assert contract_server.deliveries[1].event_id == contract_server.deliveries[2].event_id
    assert inbox.statuses == ["processing", "processing"]
    contract_server.release_held()
    assert inbox.statuses == ["processing", "processing", "succeeded"]


def test_held_webhooks_can_arrive_in_reverse(contract_server: ContractServer, inbox: Inbox) -> None:
    task_id = contract_server.add_task()
    contract_server.inject_webhook("hold", "hold")
    contract_server.set_status(task_id, "processing")
    contract_server.complete(task_id)
    assert inbox.received == []
    contract_server.release_held(reverse=True)
    assert inbox.statuses == ["succeeded", "processing"]  # a late "processing"


def test_webhook_during_create_arrives_before_the_answer(
    contract_server: ContractServer, inbox: Inbox
) -> None:
    answered_before: list[int | None] = []

    def receiver(url: str, body: bytes, headers: dict[str, str]) -> int:
        answered_before.append(contract_server.last_request.status)
        return inbox(url, body, headers)

    contract_server.deliver = receiver
    contract_server.inject(Fault.webhook_during_create("succeeded"))
    response = create(contract_server)
    assert answered_before == [None]  # the POST had no answer yet
    assert inbox.statuses == ["succeeded"]
    assert response.status_code == 201
    assert response.json()["status"] == "pending"  # the answer shows the task as created
    assert contract_server.task(response.json()["id"])["status"] == "succeeded"


def test_redeliver_and_failed_receivers(contract_server: ContractServer) -> None:
    contract_server.deliver = Inbox(status=500)
    [delivery] = contract_server.send_webhook(contract_server.add_task())
    assert delivery.status_code == 500
    assert contract_server.webhooks_delivered == 0
    contract_server.deliver = Inbox(status=204)
    again = contract_server.redeliver(delivery)
    assert (again.body, again.status_code) == (delivery.body, 204)
    assert contract_server.webhooks_delivered == 1


def test_webhooks_over_http() -> None:
    received: list[tuple[bytes, str | None]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Ittybit-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        with ContractServer(webhook_url=hook) as server:
            server.complete(server.add_task())
            [delivery] = server.deliveries
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert isinstance(delivery, Delivery)
    assert (delivery.state, delivery.status_code) == ("delivered", 204)
    [(body, signature)] = received
    assert (
        verify({"Ittybit-Signature": signature or ""}, body, [DEFAULT_WEBHOOK_SECRET]) == "ittybit"
    )


def test_unreachable_webhook_url_is_recorded_not_raised() -> None:
    with ContractServer(webhook_url="http://127.0.0.1:9/hook", webhook_timeout=0.5) as server:
        [delivery] = server.send_webhook(server.add_task())
    assert delivery.state == "failed"
    assert "Connection" in delivery.error


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["ittybit", "standard"])
def test_client_deliverer_reaches_the_webhook_view(client: Any, scheme: Any) -> None:
    # tests.settings trusts "tests-plain-secret" and "whsec_dGVzdHMtb25seS1zZWNyZXQ="
    secret = "tests-plain-secret" if scheme == "ittybit" else "whsec_dGVzdHMtb25seS1zZWNyZXQ="
    deliver = client_deliverer(client, "/tapestry/webhooks/ittybit/")
    with ContractServer(deliver=deliver, webhook_scheme=scheme, webhook_secret=secret) as server:
        [accepted] = server.send_webhook(server.add_task(metadata={"user_id": "usr_1"}))
        server.webhook_secret = DEFAULT_WEBHOOK_SECRET  # not trusted by the site
        [refused] = server.send_webhook(server.add_task())
    assert 200 <= (accepted.status_code or 0) < 300
    assert refused.status_code == 401
