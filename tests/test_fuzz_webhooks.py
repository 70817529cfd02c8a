"""Fuzzing the webhook endpoint (hypothesis), through the real view and the test client.

* **Validly signed** random bodies — random JSON, task objects and event envelopes with random
  ids, statuses, progress, outputs, errors, timestamps and metadata, often aimed at real tasks
  (their remote ids, their correlation keys): never a 5xx; a task only moves forward, a
  finished one never changes, and every accepted delivery is stored.
* Random headers and signatures (none, garbage, a valid signature of another body or with
  another secret, one digit off, a stale Standard Webhooks timestamp): never a 5xx, never a
  2xx, and not a single row changes.

``FUZZ_EXAMPLES`` sets the number of examples per test (the suite's default is small;
``bench/`` runs thousands).
"""

from __future__ import annotations

import json
import math
import os
import string
import time
import uuid
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapestry_media.models import Task, WebhookEvent
from tapestry_media.signatures import sign_ittybit, standard_headers
from tapestry_media.status import TERMINAL, Status
from tapestry_media.testing.webhooks import webhook_url

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SECRETS = ["whsec_dGVzdHMtb25seS1zZWNyZXQ=", "tests-plain-secret"]  # tests/settings.py
OTHER_SECRET = "whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQ="
RAW_STATUSES = [
    "pending", "waiting", "queued", "validating", "processing", "finishing", "running",
    "succeeded", "completed", "ready", "failed", "error", "cancelled", "canceled",
    "SUCCEEDED", " ready ", "mystery", "", "task.succeeded",
]  # fmt: skip

#: The real tasks every example starts from: (name, status, remote id or None).
TASKS = [
    ("created", Status.CREATED, None),
    ("pending", Status.PENDING, "task_fuzz_pending"),
    ("processing", Status.PROCESSING, "task_fuzz_processing"),
    ("succeeded", Status.SUCCEEDED, "task_fuzz_succeeded"),
    ("failed", Status.FAILED, "task_fuzz_failed"),
]
FIELDS = [
    "status", "raw_status", "remote_id", "progress", "output", "output_url", "error",
    "started_at", "finished_at", "metadata",
]  # fmt: skip


@pytest.fixture
def real_tasks(settings) -> list[Task]:
    assert list(settings.TAPESTRY_MEDIA["WEBHOOK_SECRETS"]) == SECRETS
    tasks = []
    for name, status, remote_id in TASKS:
        task = Task.objects.create(
            name=name, kind="video", input="https://x.test/in.mov", backend="dummy",
            status=status, remote_id=remote_id,
        )  # fmt: skip
        task.metadata = {"tapestry_task": str(task.uuid), "user_id": "usr_1"}
        task.save(update_fields=["metadata"])
        tasks.append(task)
    return tasks


def reset(tasks: list[Task]) -> None:
    """Every example starts from the same rows."""
    for task in tasks:
        Task.objects.filter(pk=task.pk).update(
            **{name: getattr(task, name) for name in FIELDS if name != "metadata"}
        )


def snapshot() -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    tasks = list(Task.objects.order_by("pk").values())
    events = list(WebhookEvent.objects.order_by("pk").values_list("pk", "delivery_count"))
    return tasks, events


# --- strategies ---------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and ±Infinity included: Python's json reads and writes them
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
timestamps = (
    st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats()
    | st.datetimes().map(lambda d: d.isoformat())
    | st.text(max_size=30)
    | json_values
)


def task_objects(tasks: list[Task]) -> st.SearchStrategy[dict[str, Any]]:
    real_ids = [t.remote_id for t in tasks if t.remote_id]
    keys = [str(t.uuid) for t in tasks]
    # Real ids and known statuses weigh more, so many bodies reach a real task and change it.
    ids = st.one_of(
        st.sampled_from(real_ids),
        st.sampled_from(real_ids),
        st.text(min_size=1, max_size=160),
        st.sampled_from(["task_local_abc", "task_" + "x" * 200]),
        json_values,
    )
    statuses = st.one_of(
        st.sampled_from(RAW_STATUSES),
        st.sampled_from(RAW_STATUSES),
        st.text(max_size=60),
        json_values,
    )
    metadata = st.dictionaries(st.text(max_size=40), json_values, max_size=5) | st.builds(
        lambda extra, key: {**extra, "tapestry_task": key},
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
        st.sampled_from(keys) | st.uuids().map(str) | st.text(max_size=40),
    )
    files = st.fixed_dictionaries(
        {},
        optional={
            "url": st.text(max_size=30) | st.just("https://cdn.x.test/" + "a" * 3000) | json_values,
            "width": st.floats() | json_values,
            "filesize": json_values,
            "kind": json_values,
        },
    )
    numbers = st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 2**64, -1]),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
    )
    # Results as the API sends them, for a real task: these reach every column a result writes.
    results = st.fixed_dictionaries(
        {
            "id": st.sampled_from(real_ids),
            "status": st.sampled_from(["succeeded", "completed", "ready", "failed", "running"]),
            "output": st.fixed_dictionaries(
                {
                    "url": st.text(max_size=30) | st.just("https://cdn.x.test/" + "a" * 3000),
                    "width": numbers,
                },
                optional={"duration": numbers, "format": st.text(max_size=8)},
            ),
        },
        optional={
            "metadata": metadata,
            "progress": numbers,
            "error": json_values,
            "finished_at": timestamps,
        },
    )
    generic = st.fixed_dictionaries(
        {"id": ids, "status": statuses},
        optional={
            "object": st.sampled_from(["task", "job", "event"]) | json_values,
            "kind": json_values,
            "progress": st.integers() | st.floats() | json_values,
            "metadata": metadata | json_values,
            "output": files | st.text(max_size=50) | st.lists(files, max_size=3) | json_values,
            "outputs": st.lists(files | json_values, max_size=3),
            "error": json_values,
            "created_at": timestamps,
            "started_at": timestamps,
            "finished_at": timestamps,
            "completed": timestamps,
        },
    )
    return st.one_of(results, results, generic)


def bodies(tasks: list[Task]) -> st.SearchStrategy[bytes]:
    task = task_objects(tasks)
    envelope = st.fixed_dictionaries(
        {"object": st.just("event"), "data": task},
        optional={
            "id": st.text(max_size=250) | json_values,
            "kind": st.sampled_from(["task.succeeded", "task.updated", "task.failed"])
            | json_values,
            "created_at": timestamps,
        },
    )
    old_envelope = st.fixed_dictionaries({"meta": json_values, "data": task})
    documents = st.one_of(task, task, envelope, old_envelope, json_values)
    as_json = documents.map(lambda d: json.dumps(d, allow_nan=True).encode())
    with_nul = as_json.map(lambda b: b.replace(b"a", b"\\u0000", 1))
    return st.one_of(as_json, as_json, as_json, with_nul, st.binary(max_size=64))


def signed(body: bytes, scheme: str, secret: str) -> dict[str, str]:
    if scheme == "ittybit":
        return {"Ittybit-Signature": sign_ittybit(body, secret)}
    return standard_headers(
        body, secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time())
    )


def post(body: bytes, headers: dict[str, str]) -> Any:
    client = Client(raise_request_exception=False)  # a crash must show as the 500 it would be
    return client.post(webhook_url(), data=body, content_type="application/json", headers=headers)


#: Forward order of the states a remote report can reach.
ORDER = [Status.CREATED, Status.SUBMITTING, Status.PENDING, Status.PROCESSING]


def rank(status: str) -> int:
    return ORDER.index(Status(status)) if status in ORDER else len(ORDER)


# --- validly signed -----------------------------------------------------------------------------


def test_validly_signed_random_bodies(real_tasks) -> None:
    @FUZZ
    @given(
        body=bodies(real_tasks),
        scheme=st.sampled_from(["ittybit", "standard"]),
        secret=st.sampled_from(SECRETS),
    )
    def check(body: bytes, scheme: str, secret: str) -> None:
        if scheme == "standard" and not secret.startswith("whsec_"):
            scheme = "ittybit"  # a plain secret signs only the Ittybit scheme
        reset(real_tasks)
        before, events_before = snapshot()

        response = post(body, signed(body, scheme, secret))

        assert response.status_code < 500, (response.status_code, response.content, body[:300])
        assert response.status_code in (200, 400), (response.status_code, response.content)
        after, events_after = snapshot()
        for old, new in zip(before, after, strict=True):
            if old["status"] in TERMINAL:
                assert old == new, "a finished task changed"
            else:
                assert rank(new["status"]) >= rank(old["status"]), (old["status"], new["status"])
        if response.status_code == 400:
            assert (after, events_after) == (before, events_before), "a refused body wrote rows"
        else:
            assert len(events_after) - len(events_before) in (0, 1)
            data = response.json()
            if data["status"] == "duplicate":
                assert len(events_after) == len(events_before)
            else:
                assert WebhookEvent.objects.filter(pk=data["event"], error="").exists()

    check()


# --- not validly signed -------------------------------------------------------------------------

header_names = st.sampled_from(
    ["Ittybit-Signature", "webhook-id", "webhook-timestamp", "webhook-signature", "X-Signature"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=20)
header_values = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], max_size=120)


def forged_headers(body: bytes) -> st.SearchStrategy[dict[str, str]]:
    """Headers that must not pass: random ones, and near misses of valid signatures."""
    random_headers = st.dictionaries(header_names, header_values, max_size=4)
    good = sign_ittybit(body, SECRETS[1])
    flipped = good[:-1] + ("0" if good[-1] != "0" else "1")
    near_misses = st.sampled_from(
        [
            {"Ittybit-Signature": flipped},
            {"Ittybit-Signature": "sha256=" + flipped},
            {"Ittybit-Signature": sign_ittybit(body + b" ", SECRETS[1])},
            {"Ittybit-Signature": sign_ittybit(body, OTHER_SECRET)},
            {"Ittybit-Signature": good.upper()[:-2]},
            {"Ittybit-Signature": ""},
            standard_headers(body, OTHER_SECRET, msg_id="msg_1", timestamp=int(time.time())),
            standard_headers(body, SECRETS[0], msg_id="msg_1", timestamp=int(time.time()) - 900),
            standard_headers(body, SECRETS[0], msg_id="msg_1", timestamp=int(time.time()) + 900),
            {
                **standard_headers(body, SECRETS[0], msg_id="msg_1", timestamp=int(time.time())),
                "webhook-id": "msg_2",
            },
            {  # a valid Ittybit signature does not rescue a bad Standard Webhooks one
                **standard_headers(body, OTHER_SECRET, msg_id="msg_1", timestamp=int(time.time())),
                "Ittybit-Signature": good,
            },
        ]
    )
    return (
        near_misses
        | random_headers
        | st.tuples(near_misses, random_headers).map(lambda pair: {**pair[1], **pair[0]})
    )


def test_random_headers_and_signatures_change_nothing(real_tasks) -> None:
    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        body = data.draw(bodies(real_tasks), label="body")
        headers = data.draw(forged_headers(body), label="headers")
        before = snapshot()

        response = post(body, headers)

        assert response.status_code < 500, (response.status_code, response.content)
        assert response.status_code in (400, 401), (response.status_code, response.content)
        assert snapshot() == before, "a delivery without a valid signature changed a row"

    check()
