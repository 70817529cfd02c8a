"""Tolerant parsing of every task shape in the contract, and of hostile values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tapestry_media.remote import (
    MAX_DEPTH,
    PayloadError,
    loads,
    parse_event,
    parse_task,
    parse_timestamp,
)
from tapestry_media.status import Status

SEED_WEBHOOK = {
    "id": "task_abc123",
    "status": "succeeded",
    "metadata": {"user_id": "usr_abc123", "submission_id": "sub_9182", "campaign": "summer-launch"},
    "output": {"url": "https://cdn.ittybit.com/x.mp4"},
}


def test_the_seed_webhook() -> None:
    task = parse_task(SEED_WEBHOOK)
    assert task.id == "task_abc123"
    assert task.status == Status.SUCCEEDED
    assert task.metadata["submission_id"] == "sub_9182"
    assert task.output_url == "https://cdn.ittybit.com/x.mp4"


@pytest.mark.parametrize(
    "payload",
    [
        {"meta": {"request_id": "r"}, "data": SEED_WEBHOOK},  # 2024 envelope
        {"id": "evt_1", "object": "event", "kind": "task.succeeded", "data": SEED_WEBHOOK},
        {**SEED_WEBHOOK, "output": "https://cdn.ittybit.com/x.mp4"},
        {**{k: v for k, v in SEED_WEBHOOK.items() if k != "output"},
         "outputs": [{"url": "https://cdn.ittybit.com/x.mp4"}]},
        {**SEED_WEBHOOK, "output": [{"url": "https://cdn.ittybit.com/x.mp4"}]},
        {**SEED_WEBHOOK, "status": "completed"},
    ],
)  # fmt: skip
def test_every_shape_gives_the_same_result(payload) -> None:
    task = parse_task(payload)
    assert (task.id, task.status, task.output_url) == (
        "task_abc123",
        Status.SUCCEEDED,
        "https://cdn.ittybit.com/x.mp4",
    )


@pytest.mark.parametrize(
    "value",
    ["2026-11-29T10:00:00Z", "2026-11-29T10:00:00+00:00", 1795946400, 1795946400000, "1795946400"],
)
def test_timestamps_in_every_form(value) -> None:
    assert parse_timestamp(value) == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["²", "not a date", float("inf"), float("nan"), 10**30, True, []])
def test_hostile_timestamps_are_none_not_errors(value) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "50", True])
def test_hostile_progress_is_none(value) -> None:
    assert parse_task({"id": "t", "status": "processing", "progress": value}).progress is None


def test_unknown_status_is_kept_raw() -> None:
    task = parse_task({"id": "t", "status": "transmogrifying"})
    assert task.status is None
    assert task.raw_status == "transmogrifying"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("boom", {"kind": "", "message": "boom"}),
        ({"kind": "input_invalid", "message": "bad"}, {"kind": "input_invalid", "message": "bad"}),
        ({"error": {"message": "old"}}, {"kind": "", "message": "old"}),
        (None, None),
    ],
)
def test_error_shapes(error, expected) -> None:
    assert parse_task({"id": "t", "status": "failed", "error": error}).error == expected


@pytest.mark.parametrize(
    "payload",
    [[], "x", {"status": "succeeded"}, {"id": "t"}, {"id": 5, "status": "x"}, {"data": 1}],
)
def test_not_a_task_is_a_payload_error(payload) -> None:
    with pytest.raises(PayloadError):
        parse_task(payload)


def test_event_envelope_keeps_its_id_and_topic() -> None:
    event = parse_event(
        {
            "id": "evt_1",
            "object": "event",
            "kind": "task.failed",
            "data": {"id": "t", "status": "failed"},
        }
    )
    assert (event.id, event.topic, event.task.status) == ("evt_1", "task.failed", Status.FAILED)
    bare = parse_event(SEED_WEBHOOK)
    assert (bare.id, bare.topic) == (None, "task.succeeded")


# --- loads: what PostgreSQL cannot store is refused, with or without the walk -----------------


def _nested(levels: int, pad: int = 0) -> bytes:
    """An object whose ``output`` nests ``levels`` arrays, after ``pad`` one-level arrays."""
    flat = b"[]," * pad
    return b'{"id":"t1","output":[' + flat + b"[" * levels + b"]" * levels + b"]}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id":"t1","m":{"a":"\\u0000"}}', "NUL"),
        (b'{"id":"t1","m":{"\\uDBFF":"x"}}', "surrogate"),  # in a key, upper-case hex
        (b'{"id":"t1","m":["\\\\", "\\ud800"]}', "surrogate"),  # after an escaped backslash
        (_nested(MAX_DEPTH - 1), "nested more than"),  # the object and output: MAX_DEPTH + 1
    ],
)
def test_loads_refuses_what_cannot_be_stored(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        loads(body)


@pytest.mark.parametrize(
    "body",
    [
        _nested(MAX_DEPTH - 2),  # exactly MAX_DEPTH deep
        _nested(2, pad=MAX_DEPTH),  # more brackets than MAX_DEPTH, shallow: walked, accepted
        b'{"id":"t1","m":{"a":"caf\\u00e9 \\ud83d\\ude00 [{[{"}}',  # escapes, paired surrogates
        b'{"id":"t1","m":{"a":"\\\\u0000"}}',  # a backslash before "u0000": no NUL
    ],
)
def test_loads_accepts_storable_json(body: bytes) -> None:
    assert isinstance(loads(body), dict)
