"""The contract server's jobs, events and webhook endpoints against ``ittybit-api.md`` §7,
checked with plain ``requests`` calls (no client code)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tapestry_media.signatures import verify
from tapestry_media.testing.contract_server import DEFAULT_API_KEY, ContractServer

SEED = {
    "input": "https://tapestry-app.com/submissions/video-9182.mov",
    "kind": "video",
    "options": {"width": 1280, "format": "mp4"},
    "metadata": {"user_id": "usr_abc123", "submission_id": "sub_9182", "campaign": "summer-launch"},
}
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
NOW = 1_764_590_400.25  # 2025-12-01T12:00:00.25Z


class Inbox(list[tuple[str, bytes, dict[str, str]]]):
    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.append((url, body, headers))
        return 200


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def contract_server_options(inbox: Inbox) -> dict[str, Any]:
    return {"deliver": inbox, "webhook_envelope": "event", "clock": lambda: NOW}


@pytest.fixture
def server(contract_server: ContractServer) -> ContractServer:
    return contract_server


def call(
    server: ContractServer, method: str, path: str, headers: Any = None, **kw: Any
) -> requests.Response:
    return requests.request(
        method, f"{server.url}{path}", headers={**AUTH, **(headers or {})}, timeout=5, **kw
    )


def test_post_jobs_answers_a_queued_job_in_the_documented_shape(server: ContractServer) -> None:
    answer = call(server, "POST", "/jobs", json=SEED)

    assert answer.status_code == 201
    job = answer.json()
    assert job["id"].startswith("job_")
    assert (job["object"], job["status"], job["output"], job["error"]) == (
        "job",
        "queued",
        None,
        None,
    )
    assert {k: job[k] for k in ("input", "kind", "options", "metadata")} == SEED
    assert job["created_at"] == job["updated_at"] == 1_764_590_400_250  # Unix ms
    assert (job["started_at"], job["finished_at"]) == (None, None)
    assert [t["kind"] for t in job["tasks"]] == ["probe", "import", "encode", "export"]
    assert all(t["object"] == "task" and t["status"] == "queued" for t in job["tasks"])
    assert all(t["job_id"] == job["id"] for t in job["tasks"])


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"input": "ftp://example.com/a.mov"}, "http, https or s3"),
        ({"kind": "speech"}, "'kind' must be one of"),
        ({"webhook_url": "https://example.com/hook"}, "register a webhook endpoint"),
    ],
)
def test_post_jobs_refuses_what_section_7_does_not_allow(
    server: ContractServer, change: dict[str, str], fragment: str
) -> None:
    answer = call(server, "POST", "/jobs", json={**SEED, **change})
    assert answer.status_code == 400
    assert fragment in answer.json()["message"]
    assert server.tasks_created == 0


def test_s3_input_is_taken(server: ContractServer) -> None:
    answer = call(server, "POST", "/jobs", json={**SEED, "input": "s3://bucket/in.mov"})
    assert answer.status_code == 201


def test_a_finished_job_has_its_output_as_a_url_string(server: ContractServer) -> None:
    job_id = call(server, "POST", "/jobs", json=SEED).json()["id"]
    server.complete(job_id, deliver=False)

    job = call(server, "GET", f"/jobs/{job_id}").json()

    assert job["status"] == "succeeded"
    assert job["output"] == f"https://cdn.example.test/{job_id}.mp4"
    assert job["finished_at"] == 1_764_590_400_250
    assert {t["status"] for t in job["tasks"]} == {"succeeded"}
    assert job["tasks"][-1]["output"]["url"] == job["output"]


def test_a_failed_step_cancels_the_later_ones(server: ContractServer) -> None:
    job_id = call(server, "POST", "/jobs", json=SEED).json()["id"]

    job = server.fail_job(job_id, step="encode", status="cancelled", deliver=False)

    assert (job["status"], job["error"]) == ("cancelled", None)
    assert [t["status"] for t in job["tasks"]] == ["succeeded", "succeeded", "failed", "cancelled"]
    assert job["tasks"][2]["error"] == {"kind": "task_failed", "message": "the encode step failed"}


def test_the_sdk_version_takes_url_not_the_seed_input(server: ContractServer) -> None:
    refused = call(server, "POST", "/tasks", json=SEED, headers={"Accept-Version": "2025-08-20"})
    assert refused.status_code == 400
    assert "'url' or 'file_id'" in refused.json()["message"]
    assert call(server, "POST", "/tasks", json=SEED).status_code == 201  # no version: taken


# --- events -----------------------------------------------------------------------------------


def test_every_webhook_is_an_event_that_can_be_read_back(
    server: ContractServer, inbox: Inbox
) -> None:
    job_id = call(server, "POST", "/jobs", json=SEED).json()["id"]
    server.inject_webhook("drop")
    server.complete(job_id)  # dropped: never delivered, still an event

    page = call(server, "GET", "/events", params={"kind": "task.succeeded"})

    assert inbox == []
    assert page.headers["Has-More"] == "false"
    assert "Link" not in page.headers
    (event,) = page.json()["data"]
    assert event["id"].startswith("evt_")
    assert (event["object"], event["kind"]) == ("event", "task.succeeded")
    assert event["created_at"] == 1_764_590_400  # Unix seconds in that version
    assert event["data"]["id"] == job_id
    assert call(server, "GET", f"/events/{event['id']}").json() == event
    assert call(server, "GET", "/events/evt_nope").status_code == 404


def test_events_page_with_link_and_has_more(server: ContractServer) -> None:
    ids = [server.add_task() for _ in range(3)]
    for task_id in ids:
        server.complete(task_id)

    first = call(server, "GET", "/events", params={"limit": 2, "order": "asc"})
    assert first.headers["Has-More"] == "true"
    assert first.links["next"]["url"].startswith(f"{server.url}/events?")
    second = requests.get(first.links["next"]["url"], headers=AUTH, timeout=5)

    seen = [e["data"]["id"] for e in first.json()["data"] + second.json()["data"]]
    assert seen == ids
    assert second.headers["Has-More"] == "false"
    newest_first = call(server, "GET", "/events").json()["data"]
    assert [e["data"]["id"] for e in newest_first] == ids[::-1]
    assert call(server, "GET", "/events", params={"limit": 0}).status_code == 400


# --- webhook endpoints --------------------------------------------------------------------------


def test_endpoints_show_their_secret_once(server: ContractServer) -> None:
    body = {
        "name": "tapestry",
        "url": "https://tapestry-app.com/hook/",
        "topics": ["task.succeeded"],
    }
    created = call(server, "POST", "/webhooks/endpoints", json=body)

    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["id"].startswith("we_")
    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["secret"].startswith("whsec_")
    assert (endpoint["status"], endpoint["verified_at"]) == ("active", None)
    listed = call(server, "GET", "/webhooks/endpoints").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in call(server, "GET", f"/webhooks/endpoints/{endpoint['id']}").json()
    assert call(server, "DELETE", f"/webhooks/endpoints/{endpoint['id']}").status_code == 204
    assert call(server, "GET", f"/webhooks/endpoints/{endpoint['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://tapestry-app.com/hook/", "topics": ["task.succeeded"]},
        {"url": "https://tapestry-app.com/hook/", "topics": ["task.exploded"]},
        {"url": "https://tapestry-app.com/hook/", "topics": []},
    ],
)
def test_endpoints_need_https_and_known_topics(server: ContractServer, body: Any) -> None:
    assert call(server, "POST", "/webhooks/endpoints", json=body).status_code == 422
    assert server.endpoints == {}


def test_events_go_to_a_registered_endpoint_signed_with_its_secret(
    server: ContractServer, inbox: Inbox
) -> None:
    body = {"url": "https://tapestry-app.com/hook/", "topics": ["task.succeeded"]}
    secret = call(server, "POST", "/webhooks/endpoints", json=body).json()["secret"]
    job_id = call(server, "POST", "/jobs", json=SEED).json()["id"]

    server.set_status(job_id, "processing")  # task.updated: not subscribed
    server.complete(job_id)

    ((url, payload, headers),) = inbox
    assert url == "https://tapestry-app.com/hook/"
    assert json.loads(payload)["kind"] == "task.succeeded"
    verify(headers, payload, [secret], now=NOW)
