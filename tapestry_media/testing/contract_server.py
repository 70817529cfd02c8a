"""An in-process HTTP server that speaks the Ittybit task API contract (``ittybit-api.md``).

For client tests and benchmarks: real HTTP on 127.0.0.1, server-side state you can drive,
faults you can inject, and signed webhook deliveries (over HTTP, or to a Python callable so a
Django test client can receive them without a live server). No Django imports.

    with ContractServer(api_key="key_test") as server:
        server.inject(Fault.created_then_reset())
        ... client POSTs to f"{server.url}/tasks" ...
        assert server.tasks_created == 1
        server.complete(task_id)  # delivers a signed ``task.succeeded`` webhook

Faults are consumed in order by the first request they match (``method``, ``path`` as an
fnmatch pattern, ``times``). A fault acts at one *stage* of a create:

* ``receive`` — before anything (a load balancer's 503, latency, a reset);
* ``processing`` — after the Idempotency-Key is claimed, before the task exists (a concurrent
  retry then gets ``409 idempotency_in_flight``);
* ``created`` — the task exists, the answer has not been sent ("created, then 500/reset",
  a slow answer, a webhook delivered *during* the create).
"""

from __future__ import annotations

import fnmatch
import html
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import requests

from ..signatures import sign_ittybit, standard_headers
from . import contract_jobs as jobs

Shape = Literal["bare", "envelope"]
TimestampStyle = Literal["iso", "seconds", "ms"]
OutputStyle = Literal["object", "string", "list"]
ErrorShape = Literal["kind", "message", "nested", "text", "html"]
WebhookScheme = Literal["ittybit", "standard"] | None
WebhookEnvelope = Literal["bare", "event"]
Stage = Literal["receive", "processing", "created"]
WebhookFault = Literal["drop", "duplicate", "hold"]
#: ``(url, body, headers) -> status code``: deliver a webhook without HTTP.
Deliverer = Callable[[str, bytes, dict[str, str]], int]

DEFAULT_API_KEY = "key_contract_test"
#: Valid for both schemes: Ittybit keys HMAC with the text, Standard Webhooks with the bytes.
DEFAULT_WEBHOOK_SECRET = "whsec_Y29udHJhY3Qtc2VydmVyLXdlYmhvb2stc2VjcmV0"  # noqa: S105

_METADATA_KEY = re.compile(r"[A-Za-z0-9_]{1,32}")
_TOPIC_BY_STATUS = {
    "succeeded": "task.succeeded",
    "completed": "task.succeeded",
    "ready": "task.succeeded",
    "failed": "task.failed",
    "error": "task.failed",
}
_ERROR_KINDS = {
    400: "request_invalid",
    401: "authentication_invalid",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    408: "request_timeout",
    409: "idempotency_in_flight",
    422: "request_invalid",
    429: "rate_limited",
}


def _error_kind(status: int) -> str:
    return _ERROR_KINDS.get(status, "server_error" if status >= 500 else "request_failed")


def http_date(when: float) -> str:
    """An HTTP date (for ``Retry-After``), e.g. ``http_date(time.time() + 3)``."""
    return formatdate(when, usegmt=True)


def client_deliverer(client: Any, path: str) -> Deliverer:
    """A ``deliver`` callable that posts through a Django test ``Client`` to ``path`` (e.g.
    ``reverse("tapestry_media:webhook")``): webhooks without a live server. Deliveries made
    *during* a create run in the server's thread, outside the test's transaction."""

    def deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = client.post(path, data=body, content_type="application/json", headers=extra)
        return int(response.status_code)

    return deliver


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What goes wrong with the next request(s) matching ``method`` and ``path``.

    At its ``stage`` the fault waits ``delay`` seconds, then moves the task to ``deliver`` and
    sends its webhook (stage ``created`` only), then resets the connection or answers
    ``status`` (with ``retry_after``, ``body``/``content_type`` or an error in ``error_shape``).
    A fault with neither ``reset`` nor ``status`` lets the request carry on.
    """

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    reset: bool = False
    stage: Stage = "receive"
    deliver: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    error_shape: ErrorShape | None = None
    kind: str = ""
    message: str = ""
    method: str | None = None
    path: str | None = None
    times: int | None = 1

    @classmethod
    def error(cls, status: int, **kw: Any) -> Fault:
        """Answer ``status`` (500, 502, 503, 400…) before doing anything."""
        return cls(status=status, **kw)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1, **kw: Any) -> Fault:
        """429 with ``Retry-After``: seconds (a number) or an HTTP date (a string)."""
        value = None if retry_after is None else _retry_after_text(retry_after)
        return cls(status=429, retry_after=value, **kw)

    @classmethod
    def unavailable(cls, retry_after: float | str | None = None, **kw: Any) -> Fault:
        value = None if retry_after is None else _retry_after_text(retry_after)
        return cls(status=503, retry_after=value, **kw)

    @classmethod
    def reset_connection(cls, **kw: Any) -> Fault:
        """Close the socket with RST and no answer, before the task exists."""
        return cls(reset=True, **kw)

    @classmethod
    def slow(cls, seconds: float, **kw: Any) -> Fault:
        """Latency: wait, then answer normally. Longer than the client's read timeout, it is a
        read timeout (the server still goes on and creates the task, as a real one would)."""
        return cls(delay=seconds, **kw)

    @classmethod
    def created_then_error(cls, status: int = 500, **kw: Any) -> Fault:
        """The task is created, then the client gets ``status``."""
        return cls(status=status, stage="created", method="POST", **kw)

    @classmethod
    def created_then_reset(cls, **kw: Any) -> Fault:
        """The task is created, then the connection is reset with no answer."""
        return cls(reset=True, stage="created", method="POST", **kw)

    @classmethod
    def created_then_slow(cls, seconds: float, **kw: Any) -> Fault:
        return cls(delay=seconds, stage="created", method="POST", **kw)

    @classmethod
    def webhook_during_create(cls, status: str = "succeeded", **kw: Any) -> Fault:
        """The task is created and its webhook (moved to ``status``) is delivered before the
        create call is answered; the answer still shows the task as first created."""
        return cls(deliver=status, stage="created", method="POST", **kw)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


# --- records ----------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request as the server saw it. ``status`` is ``None`` when it got no answer."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    #: The client's (address, port): one port across requests means a reused connection.
    client: tuple[str, int] = ("", 0)
    status: int | None = None
    task_id: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Delivery:
    """One webhook delivery attempt (duplicates are separate deliveries of the same event)."""

    event_id: str
    topic: str
    task_id: str
    url: str
    body: bytes
    headers: dict[str, str]
    #: "pending", "delivered" (got an answer), "failed" (no answer), "dropped", "held",
    #: "undeliverable" (no URL and no deliverer), "unsubscribed" (no endpoint wants it)
    state: str = "pending"
    status_code: int | None = None
    error: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Task:
    id: str
    object: str
    kind: str
    input: Any
    options: dict[str, Any]
    metadata: dict[str, Any]
    webhook_url: str
    status: str
    created: float
    updated: float
    idempotency_key: str | None = None
    progress: int | None = 0
    output: Any = None
    error: Any = None
    started: float | None = None
    finished: float | None = None
    #: A job's steps (``object == "job"`` only).
    steps: list[jobs.Step] = field(default_factory=list)


class _Stop(Exception):
    """The request has been answered (or reset) by a fault or an error."""


# --- the server -------------------------------------------------------------------------------


class ContractServer:
    """The Ittybit task API in a daemon thread on ``127.0.0.1:<free port>``; see the module doc.

    Every attribute set in ``__init__`` may be changed between requests (e.g. ``shape``).
    ``api_key=None`` accepts any bearer token.
    """

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        paths: Iterable[str] = ("/tasks", "/jobs"),
        shape: Shape = "bare",
        timestamps: TimestampStyle = "iso",
        output_style: OutputStyle = "object",
        error_shape: ErrorShape = "kind",
        initial_status: str = "pending",
        webhook_url: str = "",
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_scheme: WebhookScheme = "ittybit",
        webhook_envelope: WebhookEnvelope = "bare",
        deliver: Deliverer | None = None,
        webhook_timeout: float = 5.0,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.paths = tuple(paths)
        self.shape: Shape = shape
        self.timestamps: TimestampStyle = timestamps
        self.output_style: OutputStyle = output_style
        self.error_shape: ErrorShape = error_shape
        self.initial_status = initial_status
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_scheme: WebhookScheme = webhook_scheme
        self.webhook_envelope: WebhookEnvelope = webhook_envelope
        self.deliver = deliver
        self.webhook_timeout = webhook_timeout
        self.transform = transform
        self.clock = clock

        #: Jobs' step tasks carry ``job_id`` (in ``tasks[]`` and in step webhooks).
        self.steps_name_job = True
        #: Where the ``Link`` header of ``GET /events`` points (default: this server).
        self.events_link_base: str | None = None
        self.events = jobs.EventLog()
        self.endpoints: dict[str, jobs.Endpoint] = {}

        self.requests: list[RequestRecord] = []
        self.deliveries: list[Delivery] = []
        #: Exceptions raised inside request handlers (a test should expect none).
        self.errors: list[BaseException] = []
        self._tasks: dict[str, _Task] = {}
        self._by_key: dict[str, str] = {}
        self._in_flight: set[str] = set()
        self._faults: list[list[Any]] = []  # [Fault, remaining or None]
        self._webhook_faults: list[WebhookFault] = []
        self._held: list[Delivery] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to this long
            name=f"contract-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the contract server is not running: call start()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used by the next ``times`` requests it matches."""
        with self._lock:
            self._faults.extend([fault, fault.times] for fault in faults)

    def inject_webhook(self, *faults: WebhookFault) -> None:
        """Queue faults for the next webhook deliveries, one each: ``drop`` (never sent),
        ``duplicate`` (sent twice), ``hold`` (kept until :meth:`release_held`; reordering)."""
        with self._lock:
            self._webhook_faults.extend(faults)

    def release_held(self, *, reverse: bool = False) -> list[Delivery]:
        """Send the held webhooks, oldest first (or newest first with ``reverse``)."""
        with self._lock:
            held, self._held = self._held, []
        if reverse:
            held.reverse()
        for delivery in held:
            self._send(delivery)
        return held

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._webhook_faults.clear()

    # --- driving tasks from the test

    def add_task(
        self,
        *,
        input: Any = "https://example.test/in.mov",
        kind: str = "video",
        options: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        status: str | None = None,
        webhook_url: str = "",
        **fields: Any,
    ) -> str:
        """Create a task server-side, without a request; returns its id."""
        payload = {
            "input": input,
            "kind": kind,
            "options": dict(options or {}),
            "metadata": dict(metadata or {}),
            "webhook_url": webhook_url,
        }
        unknown = set(fields) - set(_Task.__dataclass_fields__)
        if unknown:
            raise TypeError(f"add_task() got unknown task fields {sorted(unknown)}")
        task = self._new_task(payload, key=None, object_name="task")
        with self._lock:
            if status is not None:
                task.status = status
            for name, value in fields.items():
                setattr(task, name, value)
        return task.id

    def complete(
        self,
        task_id: str,
        status: str = "succeeded",
        *,
        output: Any = None,
        error: Any = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Finish a task (``succeeded`` gets a default output file, ``failed`` a default
        error) and deliver its webhook. Returns the task as the API would show it."""
        now = self.clock()
        with self._lock:
            is_job = self._task(task_id).object == "job"
        if is_job and _TOPIC_BY_STATUS.get(status) == "task.failed":
            return self.fail_job(task_id, status=status, error=error, deliver=deliver)
        with self._lock:
            task = self._task(task_id)
            task.status = status
            task.updated = task.finished = now
            if task.object == "job" and _TOPIC_BY_STATUS.get(status) == "task.succeeded":
                task.progress, task.error = 100, None
                task.output = output or f"https://cdn.example.test/{task.id}.mp4"
                jobs.finish_steps(task.steps, now, task.output)
            elif _TOPIC_BY_STATUS.get(status) == "task.succeeded":
                task.progress = 100
                task.output = output if output is not None else _default_output(task)
                task.error = None
            elif _TOPIC_BY_STATUS.get(status) == "task.failed":
                task.error = error or {"kind": "task_failed", "message": "processing failed"}
        if deliver:
            self.send_webhook(task_id)
        return self.task(task_id)

    def fail(self, task_id: str, error: Any = None, *, deliver: bool = True) -> dict[str, Any]:
        return self.complete(task_id, "failed", error=error, deliver=deliver)

    def fail_job(
        self,
        job_id: str,
        *,
        step: str = "encode",
        status: str = "failed",
        error: Any = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Step ``step`` of a job fails and the steps after it are cancelled; the job ends
        ``status``: ``failed`` (with the step's error) or ``cancelled`` (no error of its own:
        "a sibling task failed"). Delivers the job's webhook."""
        now = self.clock()
        with self._lock:
            job = self._task(job_id)
            reason = error or {"kind": "task_failed", "message": f"the {step} step failed"}
            jobs.fail_step(job.steps, step, now, reason)
            job.status, job.updated, job.finished = status, now, now
            job.error = reason if status == "failed" else None
        if deliver:
            self.send_webhook(job_id, topic="task.failed" if status == "failed" else None)
        return self.task(job_id)

    def send_step_webhook(
        self, job_id: str, step: str, *, status: str | None = None, topic: str | None = None
    ) -> list[Delivery]:
        """Deliver an event whose data is one step of a job (naming the job unless
        ``steps_name_job`` is off), optionally after moving the step to ``status``."""
        with self._lock:
            job = self._task(job_id)
            chosen = next(s for s in job.steps if s.kind == step)
            if status is not None:
                chosen.status, chosen.updated = status, self.clock()
            data = jobs.render_step(chosen, job.id if self.steps_name_job else None)
            topic = topic or _TOPIC_BY_STATUS.get(chosen.status, "task.updated")
        return self._dispatch(self._build_delivery(job, topic, data=data))

    def set_status(
        self,
        task_id: str,
        status: str,
        *,
        progress: int | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Set any raw status (``running``, ``ready``, ``mystery``…) and deliver a webhook."""
        with self._lock:
            task = self._task(task_id)
            task.status = status
            task.updated = self.clock()
            if status in {"processing", "running"} and task.started is None:
                task.started = task.updated
            if progress is not None:
                task.progress = progress
        if deliver:
            self.send_webhook(task_id)
        return self.task(task_id)

    def set_progress(self, task_id: str, progress: int, *, deliver: bool = False) -> None:
        with self._lock:
            task = self._task(task_id)
            task.progress = progress
            task.updated = self.clock()
        if deliver:
            self.send_webhook(task_id, topic="task.updated")

    def task(self, task_id: str) -> dict[str, Any]:
        """The task as a ``GET`` would show it (bare, whatever ``shape`` is)."""
        with self._lock:
            return self.render_task(self._task(task_id))

    @property
    def task_ids(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    def send_webhook(self, task_id: str, *, topic: str | None = None) -> list[Delivery]:
        """Deliver the task's current state now (subject to queued webhook faults)."""
        with self._lock:
            task = self._task(task_id)
            topic = topic or _TOPIC_BY_STATUS.get(task.status, "task.updated")
            delivery = self._build_delivery(task, topic)
        return self._dispatch(delivery)

    def _dispatch(self, delivery: Delivery) -> list[Delivery]:
        with self._lock:
            if delivery.state == "unsubscribed":
                self.deliveries.append(delivery)
                return [delivery]
            fault = self._webhook_faults.pop(0) if self._webhook_faults else None
            if fault == "drop":
                delivery.state = "dropped"
            elif fault == "hold":
                delivery.state = "held"
                self._held.append(delivery)
            self.deliveries.append(delivery)
        if delivery.state != "pending":
            return [delivery]
        sent = [delivery]
        if fault == "duplicate":
            sent.append(self._copy(delivery))
        for one in sent:
            self._send(one)
        return sent

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send a recorded delivery again, byte for byte (what Ittybit's retries do)."""
        return self._send(self._copy(delivery))

    # --- counters

    @property
    def tasks_created(self) -> int:
        """Distinct tasks that exist server-side (a replayed key creates none)."""
        with self._lock:
            return len(self._tasks)

    @property
    def last_request(self) -> RequestRecord:
        with self._lock:
            if not self.requests:
                raise AssertionError("the contract server has seen no request")
            return self.requests[-1]

    def count(
        self, method: str | None = None, path: str | None = None, status: int | None = None
    ) -> int:
        """Requests seen, filtered by method, path (fnmatch pattern) and answered status."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or fnmatch.fnmatchcase(r.path, path))
                and (status is None or r.status == status)
            )

    def counts(self) -> Counter[tuple[str, str, int | None]]:
        """``(method, path, status) -> requests``."""
        with self._lock:
            return Counter((r.method, r.path, r.status) for r in self.requests)

    @property
    def webhooks_sent(self) -> int:
        with self._lock:
            return sum(1 for d in self.deliveries if d.state in {"delivered", "failed"})

    @property
    def webhooks_delivered(self) -> int:
        """Deliveries answered with a 2xx."""
        with self._lock:
            return sum(
                1
                for d in self.deliveries
                if d.status_code is not None and 200 <= d.status_code < 300
            )

    # --- rendering

    def render_task(self, task: _Task) -> dict[str, Any]:
        """A bare task object in the configured timestamp and output styles (a job: in the
        shape of section 7, whatever the styles)."""
        if task.object == "job":
            job = jobs.render_job(
                id=task.id,
                kind=task.kind,
                input=task.input,
                options=task.options,
                metadata=task.metadata,
                status=task.status,
                output=task.output,
                error=task.error,
                steps=task.steps,
                times=(task.created, task.started, task.finished, task.updated),
                steps_name_job=self.steps_name_job,
            )
            return self.transform(job) if self.transform else job
        body: dict[str, Any] = {
            "id": task.id,
            "object": task.object,
            "kind": task.kind,
            "status": task.status,
            "progress": task.progress,
            "input": task.input,
            "options": dict(task.options),
            "metadata": dict(task.metadata),
            "error": task.error,
        }
        body.update(self._render_output(task.output))
        body.update(self._render_times(task))
        return self.transform(body) if self.transform else body

    def _render_output(self, output: Any) -> dict[str, Any]:
        if not isinstance(output, Mapping):
            return {"outputs": output} if isinstance(output, list) else {"output": output}
        if self.output_style == "string":
            return {"output": output.get("url")}
        if self.output_style == "list":
            return {"outputs": [dict(output)]}
        return {"output": dict(output)}

    def _render_times(self, task: _Task) -> dict[str, Any]:
        if self.timestamps == "iso":
            names = ("created_at", "updated_at", "started_at", "finished_at")
        else:
            names = ("created", "updated", "started_at", "completed")
        values = (task.created, task.updated, task.started, task.finished)
        return {name: self._stamp(value) for name, value in zip(names, values, strict=True)}

    def _stamp(self, value: float | None) -> str | int | None:
        if value is None:
            return None
        if self.timestamps == "seconds":
            return int(value)
        if self.timestamps == "ms":
            return int(value * 1000)
        text = datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")

    def _envelope(self, data: Any, **meta: Any) -> Any:
        if self.shape == "envelope":
            return {"meta": {"request_id": f"req_{uuid.uuid4().hex[:12]}", **meta}, "data": data}
        return data

    # --- request handling (runs in the server's threads)

    def _handle(self, handler: _Handler, method: str) -> None:
        record = self._record(handler, method)
        with self._lock:
            fault = self._take_fault(method, record.path)
        try:
            self._run_fault(handler, record, fault, "receive")
            self._authenticate(handler, record)
            self._route(handler, record, fault)
        except _Stop:
            pass
        except Exception as exc:  # a bug in the server: make it visible to the test
            with self._lock:
                self.errors.append(exc)
            self._answer_error(handler, record, 500, "server_error", f"contract server: {exc!r}")

    def _record(self, handler: _Handler, method: str) -> RequestRecord:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        record = RequestRecord(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(handler.headers.items()),
            body=body,
            client=(str(handler.client_address[0]), int(handler.client_address[1])),
        )
        with self._lock:
            self.requests.append(record)
        return record

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for entry in self._faults:
            fault, remaining = entry
            if fault.matches(method, path):
                if remaining is not None:
                    entry[1] = remaining - 1
                    if entry[1] <= 0:
                        self._faults.remove(entry)
                return fault  # type: ignore[no-any-return]
        return None

    def _run_fault(
        self,
        handler: _Handler,
        record: RequestRecord,
        fault: Fault | None,
        stage: Stage,
        task: _Task | None = None,
    ) -> None:
        if fault is None or fault.stage != stage:
            return
        if fault.delay:
            self._stopping.wait(fault.delay)
        if fault.deliver and task is not None:
            if fault.deliver in _TOPIC_BY_STATUS:
                self.complete(task.id, fault.deliver)
            else:
                self.set_status(task.id, fault.deliver)
        if fault.reset:
            _reset(handler)
            raise _Stop
        if fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.body is not None:
                self._answer(handler, record, fault.status, fault.body, fault.content_type, headers)
            else:
                kind = fault.kind or _error_kind(fault.status)
                message = fault.message or _phrase(fault.status)
                self._answer_error(
                    handler, record, fault.status, kind, message, headers, fault.error_shape
                )
            raise _Stop

    def _authenticate(self, handler: _Handler, record: RequestRecord) -> None:
        if self.api_key is None:
            return
        if record.header("Authorization") != f"Bearer {self.api_key}":
            self._answer_error(
                handler, record, 401, "authentication_invalid", "Invalid or missing API key."
            )
            raise _Stop

    def _route(self, handler: _Handler, record: RequestRecord, fault: Fault | None) -> None:
        path = record.path.rstrip("/") or "/"
        if path == "/events" or path.startswith("/events/"):
            return self._events(handler, record, path)
        if path == "/webhooks/endpoints" or path.startswith("/webhooks/endpoints/"):
            return self._webhook_endpoints(handler, record, path)
        for base in self.paths:
            if path == base:
                if record.method == "POST":
                    return self._create(handler, record, fault, base)
                if record.method == "GET":
                    return self._list(handler, record)
            elif path.startswith(base + "/") and record.method == "GET":
                return self._get(handler, record, path[len(base) + 1 :])
        if any(path == base or path.startswith(base + "/") for base in self.paths):
            self._answer_error(handler, record, 405, "method_not_allowed", "Method not allowed.")
        else:
            self._answer_error(handler, record, 404, "not_found", f"No route {record.path}.")
        return None

    def _create(
        self, handler: _Handler, record: RequestRecord, fault: Fault | None, base: str
    ) -> None:
        payload = self._validated(handler, record, base)
        key = record.header("Idempotency-Key")
        if key is not None and not 16 <= len(key) <= 32:
            self._answer_error(
                handler, record, 400, "request_invalid", "Idempotency-Key must be 16-32 chars."
            )
            raise _Stop
        with self._lock:
            replay = self._tasks.get(self._by_key.get(key or "", ""))
            if replay is None and key is not None:
                if key in self._in_flight:
                    self._answer_error(
                        handler, record, 409, "idempotency_in_flight",
                        "A request with this Idempotency-Key is still being processed.",
                    )  # fmt: skip
                    raise _Stop
                self._in_flight.add(key)
        if replay is not None:
            record.task_id = replay.id
            return self._answer_json(handler, record, 200, self._envelope(self.task(replay.id)))
        try:
            self._run_fault(handler, record, fault, "processing")
            task = self._new_task(payload, key=key, object_name=_object_name(base))
        finally:
            with self._lock:
                self._in_flight.discard(key or "")
        record.task_id = task.id
        as_created = self._envelope(self.task(task.id))
        self._run_fault(handler, record, fault, "created", task)
        return self._answer_json(handler, record, 201, as_created)

    def _validated(self, handler: _Handler, record: RequestRecord, base: str) -> dict[str, Any]:
        problem, status = _validate_create(record.body)
        payload: dict[str, Any] = {} if problem else json.loads(record.body)
        if not problem:
            version = record.header("Accept-Version")
            problem, status = jobs.version_problem(version, base, payload), 400
        if not problem and _object_name(base) == "job":
            problem, status = jobs.create_problem(payload), 400
        if problem:
            self._answer_error(handler, record, status, "request_invalid", problem)
            raise _Stop
        return payload

    def _get(self, handler: _Handler, record: RequestRecord, task_id: str) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            body = self.render_task(task) if task else None
        if body is None:
            self._answer_error(handler, record, 404, "not_found", f"No task {task_id!r}.")
            return
        record.task_id = task_id
        self._answer_json(handler, record, 200, self._envelope(body))

    def _list(self, handler: _Handler, record: RequestRecord) -> None:
        query = {name: values[-1] for name, values in record.query.items()}
        try:
            limit = int(query.get("limit", "20"))
            page = int(query.get("page", "1"))
        except ValueError:
            limit = page = 0
        if not 1 <= limit <= 100 or page < 1:
            self._answer_error(handler, record, 400, "request_invalid", "Bad limit or page.")
            return
        with self._lock:
            tasks = [
                t
                for t in self._tasks.values()
                if query.get("kind") in (None, t.kind) and query.get("status") in (None, t.status)
            ]
            if "after" in query:
                ids = [t.id for t in tasks]
                start = ids.index(query["after"]) + 1 if query["after"] in ids else len(ids)
            else:
                start = (page - 1) * limit
            chosen = tasks[start : start + limit]
            data = [self.render_task(t) for t in chosen]
        has_more = start + limit < len(tasks)
        cursor = chosen[-1].id if chosen and has_more else None
        if self.shape == "envelope":
            body: Any = {
                "meta": {"limit": limit, "total": len(tasks), "next": cursor},
                "data": data,
            }
        else:
            body = {"object": "list", "data": data, "has_more": has_more, "next_cursor": cursor}
        self._answer_json(handler, record, 200, body)

    def _events(self, handler: _Handler, record: RequestRecord, path: str) -> None:
        if record.method != "GET":
            return self._answer_error(handler, record, 405, "method_not_allowed", "Not allowed.")
        if path.startswith("/events/"):
            with self._lock:
                event = self.events.get(path.removeprefix("/events/"))
            if event is None:
                return self._answer_error(handler, record, 404, "event_not_found", "No event.")
            return self._answer_json(handler, record, 200, event)
        query = {name: values[-1] for name, values in record.query.items()}
        with self._lock:
            status, body, headers = self.events.page(query, self.events_link_base or self.url)
        self._answer(handler, record, status, _dumps(body), "application/json", headers)

    def _webhook_endpoints(self, handler: _Handler, record: RequestRecord, path: str) -> None:
        endpoint_id = path.removeprefix("/webhooks/endpoints").strip("/")
        with self._lock:
            endpoint = self.endpoints.get(endpoint_id) if endpoint_id else None
            if not endpoint_id and record.method == "POST":
                endpoint, problem = jobs.endpoint_from(record.body, self.clock())
                if endpoint is None:
                    return self._answer_error(handler, record, 422, "request_invalid", problem)
                self.endpoints[endpoint.id] = endpoint
                return self._answer_json(handler, record, 201, endpoint.render(with_secret=True))
            if not endpoint_id and record.method == "GET":
                data = [e.render() for e in self.endpoints.values()]
                return self._answer_json(handler, record, 200, {"object": "list", "data": data})
            if endpoint is None:
                kind, message = "webhook_endpoint_not_found", f"No endpoint {endpoint_id!r}."
                return self._answer_error(handler, record, 404, kind, message)
            if record.method == "GET":
                return self._answer_json(handler, record, 200, endpoint.render())
            if record.method == "DELETE":
                del self.endpoints[endpoint_id]
                return self._answer(handler, record, 204, b"", "application/json")
        self._answer_error(handler, record, 405, "method_not_allowed", "Not allowed.")

    def _new_task(self, payload: Mapping[str, Any], *, key: str | None, object_name: str) -> _Task:
        now = self.clock()
        with self._lock:
            existing = self._tasks.get(self._by_key.get(key or "", ""))
            if existing is not None:
                return existing
            task = _Task(
                id=jobs.new_id("job" if object_name == "job" else "task"),
                object=object_name,
                kind=payload["kind"],
                input=payload["input"],
                options=dict(payload.get("options") or {}),
                metadata=dict(payload.get("metadata") or {}),
                webhook_url=payload.get("webhook_url") or "",
                status="queued" if object_name == "job" else self.initial_status,
                created=now,
                updated=now,
                idempotency_key=key,
                steps=jobs.new_steps(now) if object_name == "job" else [],
            )
            self._tasks[task.id] = task
            if key:
                self._by_key[key] = task.id
            return task

    def _task(self, task_id: str) -> _Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise KeyError(f"the contract server has no task {task_id!r}") from None

    # --- answering

    def _answer_json(
        self, handler: _Handler, record: RequestRecord, status: int, payload: Any
    ) -> None:
        self._answer(handler, record, status, _dumps(payload), "application/json")

    def _answer_error(
        self,
        handler: _Handler,
        record: RequestRecord,
        status: int,
        kind: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        shape: ErrorShape | None = None,
    ) -> None:
        body, content_type = _error_body(status, kind, message, shape or self.error_shape)
        self._answer(handler, record, status, body, content_type, headers)

    def _answer(
        self,
        handler: _Handler,
        record: RequestRecord,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        record.status = status
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            handler.close_connection = True  # the client gave up (read timeout): fine

    # --- webhooks

    def _build_delivery(
        self, task: _Task, topic: str, *, data: dict[str, Any] | None = None
    ) -> Delivery:
        event_id = f"evt_{uuid.uuid4().hex[:20]}"
        rendered = self.render_task(task) if data is None else data
        self.events.add(event_id, topic, rendered, self.clock())
        url = task.webhook_url or self.webhook_url
        endpoint = None if url else self._endpoint_for(topic)
        if self.webhook_envelope == "event" or endpoint is not None:
            payload: Any = {
                "id": event_id,
                "object": "event",
                "kind": topic,
                "data": rendered,
                "created_at": self._stamp(self.clock()),
            }
        else:
            payload = rendered
        body = _dumps(payload)
        if endpoint is not None:  # signed with that endpoint's own whsec_ secret
            headers = self._webhook_headers(body, event_id, endpoint.secret, "standard")
        else:
            headers = self._webhook_headers(body, event_id)
        return Delivery(
            event_id=event_id,
            topic=topic,
            task_id=task.id,
            url=endpoint.url if endpoint is not None else url,
            body=body,
            headers=headers,
            # endpoints registered, none subscribed to this topic: an event, no delivery
            state="unsubscribed" if not url and self.endpoints and endpoint is None else "pending",
        )

    def _endpoint_for(self, topic: str) -> jobs.Endpoint | None:
        return next(
            (e for e in self.endpoints.values() if e.status == "active" and topic in e.topics),
            None,
        )

    def _webhook_headers(
        self,
        body: bytes,
        event_id: str,
        secret: str | None = None,
        scheme: WebhookScheme | Literal["default"] = "default",
    ) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "ittybit-contract-server"}
        secret = self.webhook_secret if secret is None else secret
        scheme = self.webhook_scheme if scheme == "default" else scheme
        if scheme == "ittybit":
            headers["Ittybit-Signature"] = sign_ittybit(body, secret)
        elif scheme == "standard":
            headers.update(
                standard_headers(body, secret, msg_id=event_id, timestamp=int(self.clock()))
            )
        return headers

    def _copy(self, delivery: Delivery) -> Delivery:
        copy = Delivery(
            event_id=delivery.event_id,
            topic=delivery.topic,
            task_id=delivery.task_id,
            url=delivery.url,
            body=delivery.body,
            headers=dict(delivery.headers),
        )
        with self._lock:
            self.deliveries.append(copy)
        return copy

    def _send(self, delivery: Delivery) -> Delivery:
        try:
            if self.deliver is not None:
                delivery.status_code = int(
                    self.deliver(delivery.url, delivery.body, delivery.headers)
                )
            elif delivery.url:
                delivery.status_code = _post(delivery, timeout=self.webhook_timeout)
            else:
                delivery.state = "undeliverable"
                return delivery
        except Exception as exc:
            delivery.state, delivery.error = "failed", repr(exc)
            return delivery
        delivery.state = "delivered"
        return delivery


# --- plumbing ---------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], contract: ContractServer
    ) -> None:
        self.contract = contract
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exception()
        if exc is None or isinstance(exc, ConnectionError | TimeoutError):
            return  # a client that went away (timed out, reset): part of the job
        with self.contract._lock:
            self.contract.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API: exercises the client's pool
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 30  # an idle kept-alive connection is closed after this
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.contract._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.contract._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.contract._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.contract._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _reset(handler: _Handler) -> None:
    """Close with RST: SO_LINGER 0, and no file object left holding the socket open (``rfile``
    holds a reference; ``wfile`` does not, and the handler still flushes it afterwards)."""
    handler.close_connection = True
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.rfile.close()
    sock.close()


def _post(delivery: Delivery, *, timeout: float) -> int:
    response = requests.post(
        delivery.url, data=delivery.body, headers=delivery.headers, timeout=timeout
    )
    return response.status_code


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _error_body(status: int, kind: str, message: str, shape: ErrorShape) -> tuple[bytes, str]:
    if shape == "kind":
        return _dumps({"kind": kind, "message": message}), "application/json"
    if shape == "message":
        return _dumps({"message": message}), "application/json"
    if shape == "nested":
        return _dumps({"error": {"message": message}}), "application/json"
    if shape == "text":
        return message.encode(), "text/plain; charset=utf-8"
    phrase = _phrase(status)
    page = (
        f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{phrase}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return page.encode(), "text/html; charset=utf-8"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


def _validate_create(raw: bytes) -> tuple[str, int]:
    """``(problem, status)``: ``("", 0)`` when the create body follows the contract."""
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        return "The body is not valid JSON.", 400
    if not isinstance(payload, dict):
        return "The body must be a JSON object.", 400
    if not payload.get("input") or not isinstance(payload["input"], str | dict):
        return "'input' is required: a URL or a file.", 400
    if not payload.get("kind") or not isinstance(payload["kind"], str):
        return "'kind' is required.", 400
    if not isinstance(payload.get("options", {}), dict):
        return "'options' must be an object.", 400
    webhook_url = payload.get("webhook_url")
    if webhook_url is not None and not (
        isinstance(webhook_url, str) and re.match(r"^https?://", webhook_url)
    ):
        return "'webhook_url' must be an http(s) URL.", 422
    problem = _metadata_problem(payload.get("metadata", {}))
    return (problem, 422) if problem else ("", 0)


def _metadata_problem(metadata: object) -> str:
    if not isinstance(metadata, dict):
        return "'metadata' must be an object of string keys to string values."
    if len(metadata) > 32:
        return f"'metadata' has {len(metadata)} keys; at most 32 are allowed."
    for key, value in metadata.items():
        if not _METADATA_KEY.fullmatch(key):
            return f"metadata key {key!r} must be 1-32 characters of [A-Za-z0-9_]."
        if not isinstance(value, str):
            return f"metadata[{key!r}] must be a string, not {type(value).__name__}."
        if len(value) > 2048:
            return f"metadata[{key!r}] is longer than 2048 characters."
    return ""


def _object_name(base: str) -> str:
    """``/jobs`` answers ``"object": "job"``; anything else is a task."""
    return "job" if base.rstrip("/").endswith("/jobs") else "task"


def _default_output(task: _Task) -> dict[str, Any]:
    default = {"image": "jpg", "audio": "mp3"}.get(task.kind, "mp4")
    extension = str(task.options.get("format", default))
    return {
        "object": "file",
        "kind": task.kind,
        "type": f"{task.kind}/{extension}",
        "format": extension,
        "url": f"https://cdn.example.test/{task.id}.{extension}",
        "width": task.options.get("width", 1280),
        "height": 720,
        "duration": 1.0,
        "filesize": 123456,
    }
