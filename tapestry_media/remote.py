"""The API's task object, parsed tolerantly into one normalised shape.

Ittybit has answered in several shapes over time (bare objects, ``{meta, data}`` envelopes,
event envelopes; ``output`` as a file object, a URL string or an ``outputs`` list; timestamps as
ISO strings, Unix seconds or milliseconds). Everything here keeps the raw payload, never guesses
and never crashes on a field it does not know.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from .status import Status, normalize

_MS_THRESHOLD = 10**12
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


#: ``Task.remote_id`` holds this many characters.
MAX_ID_LENGTH = 128


class PayloadError(ValueError):
    """A payload that is not a task object (or an envelope holding one)."""


def loads(body: bytes) -> object:
    """Strict JSON (RFC 8259) that PostgreSQL can store: UTF-8, no NaN or ±Infinity (Python's
    ``json`` reads them, jsonb does not), no U+0000 and no unpaired surrogate (text and jsonb
    refuse both), nested at most ``MAX_DEPTH`` deep (deeper would overflow the stack here or
    when the value is stored). Anything else is a :class:`PayloadError` naming the problem."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadError(f"the body is nested more than {MAX_DEPTH} levels deep") from exc
    if _may_hold_problems(text):
        _check_values(payload)
    return payload


#: How deeply a payload's arrays and objects may nest (a task object needs fewer than ten).
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value")


def _check_values(payload: object) -> None:
    """Walk ``payload`` without recursion: its depth, and each string key and value."""
    pending: list[tuple[object, int]] = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise PayloadError(f"the body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                pending.append((item, depth + 1))
        else:
            pending.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise PayloadError("the body holds a NUL character (\\u0000)")
    if _SURROGATE.search(text):
        raise PayloadError("the body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)")


def _may_hold_problems(text: str) -> bool:
    """Whether the JSON ``text`` can hold what :func:`_check_values` looks for. A NUL or an
    unpaired surrogate can only come from a ``\\u`` escape (valid UTF-8 holds no surrogate,
    and the parser refuses a raw control character in a string), and nesting deeper than
    ``MAX_DEPTH`` needs more than ``MAX_DEPTH`` brackets. Brackets inside strings only count
    too many, and a ``\\u`` that is none (``"\\\\u"``) only sends the body to the check."""
    return "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH


@dataclass(frozen=True)
class RemoteTask:
    id: str
    status: Status | None
    raw_status: str
    kind: str = ""
    progress: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    output: Any = None
    output_url: str = ""
    error: dict[str, str] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteEvent:
    """A webhook body: an event envelope, or a bare task object (then ``id`` is ``None``)."""

    id: str | None
    topic: str
    task: RemoteTask


def parse_timestamp(value: object) -> datetime | None:
    """ISO-8601 text, Unix seconds or Unix milliseconds (anything above 10^12 is ms)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if value > _MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.match(text):
            return parse_timestamp(float(text))
        try:
            parsed = parse_datetime(text)
        except ValueError:
            return None
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return None


def unwrap(payload: object) -> dict[str, Any]:
    """Strip the 2024 ``{meta, data}`` envelope and the event envelope down to the task."""
    if not isinstance(payload, Mapping):
        raise PayloadError("expected a JSON object")
    body = dict(payload)
    for _ in range(2):
        inner = body.get("data")
        is_envelope = body.get("object") == "event" or ("meta" in body and "id" not in body)
        if isinstance(inner, Mapping) and (is_envelope or "id" not in body):
            body = dict(inner)
    return body


def parse_task(payload: object) -> RemoteTask:
    body = job_view(unwrap(payload))
    task_id = body.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise PayloadError("the task object has no 'id'")
    if len(task_id) > MAX_ID_LENGTH:
        raise PayloadError(f"the task id is longer than {MAX_ID_LENGTH} characters")
    raw_status = body.get("status")
    if not isinstance(raw_status, str) or not raw_status:
        raise PayloadError("the task object has no 'status'")
    output, output_url = _parse_output(body)
    status = normalize(raw_status)
    failed_step = _failed_step(body) if status == Status.CANCELLED else None
    error = parse_error(body.get("error"))
    if failed_step is not None:  # a job cancelled because one of its steps failed
        status = Status.FAILED
        error = (
            parse_error(failed_step.get("error"))
            or error
            or {
                "kind": "step_failed",
                "message": f"the job's {failed_step.get('kind') or 'step'} step failed",
            }
        )
    return RemoteTask(
        id=task_id,
        status=status,
        raw_status=raw_status,
        kind=str(body.get("kind") or ""),
        progress=_parse_progress(body.get("progress")),
        metadata=_parse_metadata(body.get("metadata")),
        output=output,
        output_url=output_url,
        error=error,
        created_at=parse_timestamp(_first(body, "created_at", "created")),
        updated_at=parse_timestamp(_first(body, "updated_at", "updated")),
        started_at=parse_timestamp(body.get("started_at")),
        finished_at=parse_timestamp(_first(body, "finished_at", "completed_at", "completed")),
        raw=body,
    )


#: A step's status, as what it says about its job (the job's own report says how it ended).
_STEP_TO_JOB = {
    Status.PENDING: "queued",
    Status.PROCESSING: "processing",
    Status.SUCCEEDED: "processing",
    Status.FAILED: "failed",
}


def job_view(body: dict[str, Any]) -> dict[str, Any]:
    """A step task of a job (``POST /jobs`` shape) that names its job (``job_id``), seen as a
    report on that job: id the job's, status ``failed`` when the step failed, ``processing``
    or ``queued`` otherwise (a step's success is not the job's), no output or progress; the
    step is kept under ``"step"``. Anything else is returned as it is."""
    job_id = body.get("job_id")
    if body.get("object") == "job" or not isinstance(job_id, str) or not job_id:
        return body
    raw = body.get("status")
    step_status = normalize(raw) if isinstance(raw, str) else None
    view: dict[str, Any] = {
        "id": job_id,
        "object": "job",
        # A cancelled step (a sibling failed, or the job was cancelled) ends nothing itself.
        "status": _STEP_TO_JOB.get(step_status, "processing") if step_status else raw,
        "step": body,
    }
    if isinstance(body.get("metadata"), Mapping):
        view["metadata"] = body["metadata"]
    if step_status == Status.FAILED:
        view["error"] = body.get("error") or {"kind": "step_failed", "message": "a step failed"}
    return view


def _failed_step(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    steps = body.get("tasks") if body.get("object") == "job" else None
    for step in steps if isinstance(steps, list) else ():
        raw = step.get("status") if isinstance(step, Mapping) else None
        if isinstance(raw, str) and normalize(raw) == Status.FAILED:
            return step  # type: ignore[no-any-return]
    return None


def parse_event(payload: object) -> RemoteEvent:
    if not isinstance(payload, Mapping):
        raise PayloadError("expected a JSON object")
    if payload.get("object") == "event" or (
        isinstance(payload.get("data"), Mapping) and "kind" in payload and "status" not in payload
    ):
        event_id = payload.get("id")
        topic = payload.get("kind") or payload.get("type") or ""
        task = parse_task(payload.get("data"))
        return RemoteEvent(
            id=event_id if isinstance(event_id, str) and event_id else None,
            topic=str(topic),
            task=task,
        )
    task = parse_task(payload)
    topic = f"task.{task.status.value}" if task.status else f"task.{task.raw_status}"
    return RemoteEvent(id=None, topic=topic, task=task)


def parse_error(value: object) -> dict[str, str] | None:
    """``"text"``, ``{kind, message}``, ``{message}``, ``{error: {...}}`` → ``{kind, message}``."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        return {"kind": "", "message": value}
    if isinstance(value, Mapping):
        nested = value.get("error")
        if isinstance(nested, Mapping | str) and "message" not in value:
            return parse_error(nested)
        message = value.get("message") or value.get("detail") or ""
        kind = value.get("kind") or value.get("type") or value.get("code") or ""
        if not message and not kind:
            return {"kind": "", "message": str(dict(value))}
        error = {"kind": str(kind), "message": str(message)}
        if value.get("message") and isinstance(value.get("detail"), str):
            error["detail"] = value["detail"]  # for operators: the API shows only the message
        return error
    return {"kind": "", "message": str(value)}


def public_error(error: object) -> dict[str, str] | None:
    """A stored ``Task.error`` as users see it: without ``detail`` (the engine's full text,
    which names server paths; the admin shows it)."""
    if not isinstance(error, Mapping):
        return None
    return {str(key): str(value) for key, value in error.items() if key != "detail"}


def _first(body: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if body.get(key) is not None:
            return body[key]
    return None


def _parse_progress(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0, min(100, int(value)))


def _parse_metadata(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}


def _parse_output(body: Mapping[str, Any]) -> tuple[Any, str]:
    output = body.get("output")
    if isinstance(output, str):
        return {"url": output}, output
    if isinstance(output, Mapping):
        return dict(output), _url_of(output)
    outputs = output if isinstance(output, list) else body.get("outputs")
    if isinstance(outputs, list) and outputs:
        files = [dict(o) if isinstance(o, Mapping) else {"url": str(o)} for o in outputs]
        return files, _url_of(files[0])
    return None, ""


def _url_of(file_object: Mapping[str, Any]) -> str:
    url = file_object.get("url") or file_object.get("src") or ""
    return url if isinstance(url, str) else ""
