"""``manage.py ittybit webhooks create|list|delete`` against the contract server."""

from __future__ import annotations

import logging
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tapestry_media.models import Submission
from tapestry_media.status import Status
from tapestry_media.testing.contract_server import DEFAULT_API_KEY, ContractServer
from tapestry_media.testing.jobs import run_jobs
from tapestry_media.testing.webhooks import closing_deliverer

from .helpers import video_upload

SITE = "https://tapestry-app.com/tapestry/webhooks/ittybit/"


@pytest.fixture
def contract_server_options() -> dict[str, Any]:
    return {"deliver": closing_deliverer()}


@pytest.fixture
def server(contract_server: ContractServer, settings) -> ContractServer:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "ittybit",
        "API_MODE": "jobs",
        "API_KEY": DEFAULT_API_KEY,
        "API_BASE_URL": contract_server.url,
        "HTTP_RETRIES": 0,
    }
    return contract_server


def webhooks(*args: str) -> str:
    out = StringIO()
    call_command("ittybit", "webhooks", *args, stdout=out)
    return out.getvalue()


def test_create_registers_the_endpoint_and_prints_the_secret_once(server, caplog) -> None:
    caplog.set_level(logging.DEBUG)

    out = webhooks("create", "--url", SITE, "--name", "tapestry")

    request = server.last_request
    assert (request.method, request.path, request.status) == ("POST", "/webhooks/endpoints", 201)
    assert request.json == {
        "name": "tapestry",
        "url": SITE,
        "topics": ["task.created", "task.updated", "task.succeeded", "task.failed"],
    }
    (endpoint,) = server.endpoints.values()
    assert out.count(endpoint.secret) == 1
    assert endpoint.id in out
    assert "WEBHOOK_SECRETS" in out
    # the positive control: the call was logged, and no record holds the secret
    assert any("/webhooks/endpoints" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert endpoint.secret not in record.getMessage()
        assert endpoint.secret not in repr(record.__dict__)


def test_create_takes_topics_and_defaults_to_webhook_url(server, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_URL": SITE}
    webhooks("create", "--topic", "task.succeeded", "--topic", "task.failed")
    assert server.last_request.json == {"url": SITE, "topics": ["task.succeeded", "task.failed"]}


@pytest.mark.parametrize("url", ["http://tapestry-app.com/hook/", "ftp://x/", "tapestry-app.com"])
def test_create_refuses_a_url_that_is_not_https_with_the_reason(server, url: str) -> None:
    with pytest.raises(CommandError, match=r"not an HTTPS URL: Ittybit delivers webhooks to HTTPS"):
        webhooks("create", "--url", url)
    assert server.count() == 0


def test_create_needs_a_url_and_a_key(server, settings) -> None:
    with pytest.raises(CommandError, match="--url"):
        webhooks("create")
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "API_KEY": ""}
    with pytest.raises(CommandError, match="API_KEY"):
        webhooks("create", "--url", SITE)
    assert server.count() == 0


def test_an_unknown_topic_is_a_usage_error(server) -> None:
    with pytest.raises(CommandError, match=re.escape("invalid choice: 'task.exploded'")):
        webhooks("create", "--url", SITE, "--topic", "task.exploded")


def test_list_and_delete(server) -> None:
    secret_output = webhooks("create", "--url", SITE)
    (endpoint,) = server.endpoints.values()

    listed = webhooks("list")

    assert endpoint.id in listed
    assert SITE in listed
    assert endpoint.secret not in listed
    assert endpoint.secret in secret_output
    assert webhooks("delete", endpoint.id).strip() == f"deleted webhook endpoint {endpoint.id}"
    assert server.endpoints == {}
    assert webhooks("list").strip() == "no webhook endpoints"
    with pytest.raises(CommandError, match=r"webhook_endpoint_not_found|No endpoint"):
        webhooks("delete", endpoint.id)


@pytest.mark.django_db(transaction=True)
def test_the_registered_endpoint_receives_the_job_result(server, settings) -> None:
    out = webhooks("create", "--url", SITE, "--topic", "task.succeeded")
    secret = re.search(r"whsec_\S+", out)
    assert secret is not None
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": [secret[0]]}
    submission = Submission.objects.create(file=video_upload())
    run_jobs()
    video = submission.tasks.get(name="video")

    server.complete(video.remote_id)

    (delivery,) = [d for d in server.deliveries if d.topic == "task.succeeded"]
    assert (delivery.url, delivery.status_code) == (SITE, 200)
    video.refresh_from_db()
    assert video.status == Status.SUCCEEDED
