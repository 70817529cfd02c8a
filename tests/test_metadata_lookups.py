"""Metadata keys are data, never ORM lookups (issue 11, item 5)."""

from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tapestry_media import metadata as md
from tapestry_media import pipeline
from tapestry_media.admin import metadata_search
from tapestry_media.conf import validate
from tapestry_media.models import Task, metadata_q

from .helpers import video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network", "fresh_throttles")]

TASKS = reverse("tapestry_media:task-list")
SUBMISSIONS = reverse("tapestry_media:submission-list")
LOOKUP_KEYS = ["campaign__regex", "x__contains", "campaign__startswith", "campaign__isnull", "a__b"]


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def task(user, **metadata: str) -> Task:
    return Task.objects.create(
        kind="video", input="x", backend="dummy", created_by=user, metadata=metadata
    )


@pytest.mark.parametrize("key", LOOKUP_KEYS)
def test_api_filter_with_a_lookup_in_the_key_is_a_400(api, user, key) -> None:
    task(user, campaign="summer")
    response = api.get(TASKS, {f"metadata[{key}]": ".*"})
    assert response.status_code == 400
    assert "'__'" in response.json()["error"]["message"] or "__" in str(response.json())


def test_api_filter_positive_control(api, user) -> None:
    mine = task(user, campaign="summer")
    task(user, campaign="summer2")
    response = api.get(TASKS, {"metadata[campaign]": "summer"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(mine.uuid)]


@pytest.mark.parametrize("key", LOOKUP_KEYS)
def test_keys_with_a_lookup_are_refused_everywhere(api, user, key) -> None:
    response = api.post(
        SUBMISSIONS, {"file": video_upload(), f"metadata[{key}]": "v"}, format="multipart"
    )
    assert response.status_code == 400
    with pytest.raises(md.MetadataError, match="without '__'"):
        pipeline.submit(input="x", kind="video", metadata={key: "v"})
    assert any("without '__'" in p for p in validate({"DEFAULT_METADATA": {key: "v"}}))
    with pytest.raises(CommandError, match="without '__'"):
        call_command("ittybit", "tasks", "--metadata", f"{key}=v")
    with pytest.raises(CommandError, match="without '__'"):
        call_command(
            "ittybit", "video", "-i", "https://x.test/a.mov", "--local", "--metadata", f"{key}=v"
        )
    assert metadata_search(f"{key}=v", connection.vendor) is None
    assert Task.objects.count() == 0


def test_correlation_key_setting_refuses_a_lookup() -> None:
    assert any("'__'" in p for p in validate({"CORRELATION_KEY": "tapestry__task"}))
    assert not validate({"CORRELATION_KEY": "tapestry_task"})


def test_metadata_q_takes_the_key_as_data(user) -> None:
    """Even a key that slipped past validation names a key: with ``metadata__{key}`` the first
    filter was a regex over ``campaign`` and matched ``summer``."""
    literal = task(user, campaign__regex="summer")
    task(user, campaign="summer")
    found = Task.objects.filter(metadata_q({"campaign__regex": "summer"}, connection.vendor))
    assert list(found) == [literal]
    assert not Task.objects.filter(metadata_q({"campaign__regex": ".*"}, connection.vendor))


def test_exact_match_only(user) -> None:
    exact = task(user, campaign="summer", source="ios")
    task(user, campaign="summer-launch", source="ios")
    task(user, campaign="Summer", source="ios")
    task(user, campaign="summer", source="web")
    rows = Task.objects.with_metadata(campaign="summer", source="ios")
    assert list(rows) == [exact]


def test_long_key_and_value_over_10k_tasks_is_fast_and_plain(api, user) -> None:
    key, value = "k" * md.MAX_KEY_LENGTH, "a" * (md.MAX_VALUE_LENGTH - 1) + "!"
    Task.objects.bulk_create(
        Task(
            kind="video",
            input="x",
            backend="dummy",
            created_by=user,
            metadata={key: "a" * md.MAX_VALUE_LENGTH, "n": str(i)},
        )
        for i in range(10_000)
    )
    target = task(user, **{key: value})
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = api.get(TASKS, {f"metadata[{key}]": value})
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(target.uuid)]
    assert elapsed < 1.0, elapsed
    sql = " ".join(q["sql"] for q in captured.captured_queries).upper()
    assert "REGEXP" not in sql
    assert " LIKE " not in sql
    assert "GLOB" not in sql
    print(f"10k tasks, 32-char key, 2048-char value: {elapsed * 1000:.0f} ms")
