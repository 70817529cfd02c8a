"""The contract server's late-2025 resources, shaped after ``ittybit-api.md`` section 7.

* Jobs: ``POST /jobs`` answers a job (``job_…``, ``object: "job"``, ``status: "queued"``,
  ``output`` a URL string, ``tasks[]`` of steps probe → import → encode → export, timestamps in
  Unix milliseconds). A failed step cancels the steps after it; the job then ends ``failed``
  or ``cancelled`` (the doc: cancelled "can mean a sibling task failed").
* Events: every webhook the server builds is also kept as an event
  ``{id: "evt_…", object: "event", kind, data, created_at}`` (Unix seconds) and can be read
  back with ``GET /events?kind=&limit=&after=&before=&order=`` (``Link: <…>; rel="next"`` and
  ``Has-More`` headers) and ``GET /events/{id}``.
* Webhook endpoints: ``POST /webhooks/endpoints {name?, url, topics}`` (HTTPS only) answers
  ``{id: "we_…", object: "webhook_endpoint", …, secret: "whsec_…"}``; the secret is never
  shown again by ``GET`` (list or one) and ``DELETE`` removes the endpoint.
* Versions: ``Accept-Version: 2025-08-20`` is the official SDK's version, whose ``POST
  /tasks`` takes ``url``/``file_id`` and flat options; the seed's ``input`` body is refused.

The shapes here are written from the API document, not from the client's code.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

#: Job steps, in order (section 7).
STEP_KINDS = ("probe", "import", "encode", "export")
JOB_KINDS = ("video", "audio", "image", "animation", "adaptive_video")
TOPICS = (
    "task.created",
    "task.updated",
    "task.succeeded",
    "task.failed",
    "run.created",
    "run.updated",
    "run.succeeded",
    "run.failed",
)
SDK_VERSION = "2025-08-20"
_INPUT_SCHEMES = re.compile(r"^(https?|s3)://\S+$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def ms(value: float | None) -> int | None:
    return None if value is None else int(value * 1000)


@dataclass
class Step:
    """One task of a job, as its ``tasks[]`` shows it."""

    id: str
    kind: str
    status: str = "queued"
    progress: int = 0
    output: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    created: float = 0.0
    updated: float = 0.0
    started: float | None = None
    finished: float | None = None


def new_steps(now: float) -> list[Step]:
    return [Step(id=new_id("task"), kind=kind, created=now, updated=now) for kind in STEP_KINDS]


def render_step(step: Step, job_id: str | None) -> dict[str, Any]:
    """A step task object; ``job_id`` names its job unless ``None``."""
    body: dict[str, Any] = {
        "id": step.id,
        "object": "task",
        "kind": step.kind,
        "status": step.status,
        "progress": step.progress,
        "output": step.output,
        "error": step.error,
        "created_at": ms(step.created),
        "started_at": ms(step.started),
        "finished_at": ms(step.finished),
        "updated_at": ms(step.updated),
    }
    if job_id is not None:
        body["job_id"] = job_id
    return body


def render_job(
    *,
    id: str,
    kind: str,
    input: Any,
    options: dict[str, Any],
    metadata: dict[str, Any],
    status: str,
    output: Any,
    error: Any,
    steps: list[Step],
    times: tuple[float, float | None, float | None, float],
    steps_name_job: bool = True,
) -> dict[str, Any]:
    """A job object: ``output`` is the result's URL string (or null)."""
    created, started, finished, updated = times
    if isinstance(output, dict):
        output = output.get("url")
    return {
        "id": id,
        "object": "job",
        "kind": kind,
        "input": input,
        "output": output,
        "options": dict(options),
        "metadata": dict(metadata),
        "status": status,
        "error": error,
        "tasks": [render_step(step, id if steps_name_job else None) for step in steps],
        "created_at": ms(created),
        "started_at": ms(started),
        "finished_at": ms(finished),
        "updated_at": ms(updated),
    }


def finish_steps(steps: list[Step], now: float, output_url: str) -> None:
    """Every step succeeded; the export step's file is the job's output."""
    for step in steps:
        step.status, step.progress, step.updated, step.finished = "succeeded", 100, now, now
        step.started = step.started or now
    steps[-1].output = {"object": "file", "kind": "video", "url": output_url}


def fail_step(steps: list[Step], kind: str, now: float, error: dict[str, str]) -> Step:
    """Step ``kind`` failed: the ones before it succeeded, the ones after it are cancelled."""
    names = [step.kind for step in steps]
    if kind not in names:
        raise KeyError(f"no step {kind!r}; steps are {names}")
    failed_at = names.index(kind)
    for index, step in enumerate(steps):
        step.updated = now
        if index < failed_at:
            step.status, step.progress, step.finished = "succeeded", 100, now
        elif index == failed_at:
            step.status, step.error, step.finished = "failed", dict(error), now
        else:
            step.status, step.finished = "cancelled", now
    return steps[failed_at]


def create_problem(payload: dict[str, Any]) -> str:
    """Section 7's rules for a ``POST /jobs`` body beyond the seed's ("" when it is fine)."""
    if not isinstance(payload.get("input"), str) or not _INPUT_SCHEMES.match(payload["input"]):
        return "'input' must be a URL with an http, https or s3 scheme."
    if payload.get("kind") not in JOB_KINDS:
        return f"'kind' must be one of {', '.join(JOB_KINDS)}."
    if "webhook_url" in payload:
        return "'webhook_url' is not a field of a job: register a webhook endpoint instead."
    return ""


def version_problem(version: str | None, path: str, payload: dict[str, Any]) -> str:
    """Refuse the seed's ``input`` body on ``POST /tasks`` in the SDK's version."""
    speaks_sdk = version == SDK_VERSION and path.rstrip("/").endswith("/tasks")
    if speaks_sdk and ("input" in payload or not ("url" in payload or "file_id" in payload)):
        return (
            f"In version {SDK_VERSION}, POST /tasks takes 'url' or 'file_id' and flat "
            "options, not 'input'."
        )
    return ""


# --- events -----------------------------------------------------------------------------------


@dataclass
class EventLog:
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event_id: str, kind: str, data: dict[str, Any], created: float) -> None:
        self.events.append(
            {
                "id": event_id,
                "object": "event",
                "kind": kind,
                "data": data,
                "created_at": int(created),
            }
        )

    def get(self, event_id: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["id"] == event_id), None)

    def page(self, query: dict[str, str], base_url: str) -> tuple[int, Any, dict[str, str]]:
        """``(status, body, headers)`` for ``GET /events`` with ``query``."""
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        order = query.get("order", "desc")
        if not 1 <= limit <= 100 or order not in ("asc", "desc"):
            return 400, {"kind": "request_invalid", "message": "Bad limit or order."}, {}
        chosen = [e for e in self.events if query.get("kind") in (None, e["kind"])]
        if order == "desc":
            chosen.reverse()
        ids = [e["id"] for e in chosen]
        if "after" in query:
            chosen = chosen[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
        if "before" in query and query["before"] in ids:
            cut = [e["id"] for e in chosen]
            chosen = chosen[: cut.index(query["before"])] if query["before"] in cut else chosen
        data, has_more = chosen[:limit], len(chosen) > limit
        headers = {"Has-More": "true" if has_more else "false"}
        if has_more:
            following = {**query, "after": data[-1]["id"]}
            headers["Link"] = f'<{base_url}/events?{urlencode(following)}>; rel="next"'
        return 200, {"object": "list", "data": data}, headers


# --- webhook endpoints --------------------------------------------------------------------------


@dataclass
class Endpoint:
    id: str
    url: str
    topics: list[str]
    secret: str
    name: str = ""
    status: str = "active"
    created: float = 0.0

    def render(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "name": self.name or None,
            "url": self.url,
            "topics": list(self.topics),
            "status": self.status,
            "verified_at": None,
            "created_at": ms(self.created),
            "updated_at": ms(self.created),
        }
        if with_secret:
            body["secret"] = self.secret
        return body


def endpoint_from(raw: bytes, now: float) -> tuple[Endpoint | None, str]:
    """A new endpoint from a ``POST /webhooks/endpoints`` body, or why it is refused."""
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        return None, "The body is not valid JSON."
    if not isinstance(payload, dict):
        return None, "The body must be a JSON object."
    url = payload.get("url")
    if not isinstance(url, str) or not re.match(r"^https://[^\s/]+", url):
        return None, "'url' must be an HTTPS URL."
    topics = payload.get("topics")
    if not isinstance(topics, list) or not topics or not set(topics) <= set(TOPICS):
        return None, f"'topics' must be a non-empty list of: {', '.join(TOPICS)}."
    name = payload.get("name")
    if name is not None and not isinstance(name, str):
        return None, "'name' must be a string."
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return Endpoint(new_id("we"), url, list(topics), secret, name or "", created=now), ""
