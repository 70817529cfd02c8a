"""The API keeps its own policy whatever the host's REST_FRAMEWORK says; one error body; schema."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from tapestry_media.api.throttling import TapestryRateThrottle
from tapestry_media.models import Submission, Task

from .helpers import video_upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network", "fresh_throttles")]

SUBMISSIONS = reverse("tapestry_media:submission-list")
TASKS = reverse("tapestry_media:task-list")
SCHEMA = reverse("tapestry_media:api-schema")


def hostile_handler(exc, context):  # pragma: no cover - must never be called
    raise AssertionError("the host's EXCEPTION_HANDLER was used")


HOSTILE = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": {},
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100000,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_FILTER_BACKENDS": [],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.QueryParameterVersioning",
    "EXCEPTION_HANDLER": "tests.test_api_policy.hostile_handler",
    "DATETIME_FORMAT": "%d/%m/%Y",
}


@pytest.fixture
def hostile(settings) -> None:
    settings.REST_FRAMEWORK = HOSTILE


def test_hostile_defaults_do_not_open_the_api(hostile, user) -> None:
    anonymous = APIClient()
    response = anonymous.get(SUBMISSIONS)
    assert response.status_code == 403
    assert response.json()["error"]["kind"] == "not_authenticated"
    response = anonymous.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert response.status_code == 403
    assert anonymous.post(TASKS, {"input": "x", "kind": "video"}, format="json").status_code == 403
    assert Submission.objects.count() == Task.objects.count() == 0


def test_hostile_defaults_do_not_change_paging_parsing_or_rendering(hostile, user) -> None:
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert response.status_code == 201  # our parsers, not the host's (none)
    assert response["Content-Type"] == "application/json"
    assert response.json()["created_at"][:4].isdigit()  # ISO 8601, not %d/%m/%Y
    for _ in range(26):
        Submission.objects.create(uploader=user, file=video_upload())
    page = client.get(SUBMISSIONS).json()
    assert len(page["results"]) == 25
    assert "cursor=" in page["next"]
    assert "count" not in page  # not the host's LimitOffsetPagination


def test_missing_scope_rates_get_defaults(hostile) -> None:
    throttle = TapestryRateThrottle()
    factory = APIRequestFactory()
    assert throttle.allow_request(Request(factory.get("/")), None)  # no ImproperlyConfigured
    assert throttle.rate == "600/minute"
    assert throttle.allow_request(Request(factory.post("/")), None)
    assert throttle.rate == "60/minute"


def test_reads_and_writes_are_throttled_by_their_own_scopes(settings, user) -> None:
    settings.REST_FRAMEWORK = {
        "DEFAULT_THROTTLE_RATES": {"tapestry_media": "3/minute", "tapestry_media_write": "1/minute"}
    }
    client = APIClient()
    client.force_authenticate(user)
    assert [client.get(SUBMISSIONS).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(SUBMISSIONS)
    assert response.status_code == 429
    assert response.json()["error"]["kind"] == "throttled"
    assert int(response["Retry-After"]) > 0
    first = client.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    second = client.post(SUBMISSIONS, {"file": video_upload()}, format="multipart")
    assert (first.status_code, second.status_code) == (201, 429)
    assert Submission.objects.count() == 1


def test_one_error_body_for_every_failure(user) -> None:
    client = APIClient()
    client.force_authenticate(user)
    response = client.delete(SUBMISSIONS)
    assert response.status_code == 405
    assert response.json() == {
        "error": {"kind": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}
    }
    response = client.post(TASKS, "input=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["kind"] == "unsupported_media_type"
    response = client.post(TASKS, "{broken", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["kind"] == "parse_error"
    response = client.get(reverse("tapestry_media:submission-detail", args=["sub_nope"]))
    assert response.json() == {"error": {"kind": "not_found", "message": "Not found."}}


def test_openapi_schema(client) -> None:
    response = client.get(SCHEMA)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) == {
        "/tapestry/api/submissions/",
        "/tapestry/api/submissions/uploads/",
        "/tapestry/api/submissions/{public_id}/",
        "/tapestry/api/tasks/",
        "/tapestry/api/tasks/{uuid}/",
    }
    ops = {op["operationId"] for methods in paths.values() for op in methods.values()}
    assert ops == {
        "listSubmissions",
        "createSubmission",
        "createUploadTarget",
        "getSubmission",
        "listTasks",
        "createTask",
        "getTask",
    }
    create = paths["/tapestry/api/submissions/"]["post"]["requestBody"]["content"]
    assert list(create) == ["multipart/form-data", "application/json"]
    body = schema["components"]["schemas"]["SubmissionCreate"]["properties"]
    assert body["file"]["format"] == "binary"
    assert body["upload_key"]["type"] == "string"  # instead of the file (direct uploads)
    # JSON: the key of a direct upload, never a file
    from_upload = create["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    json_body = schema["components"]["schemas"][from_upload]
    assert "file" not in json_body["properties"]
    assert json_body["required"] == ["upload_key"]
    assert set(json_body["properties"]) == {*body} - {"file"}
    target = paths["/tapestry/api/submissions/uploads/"]["post"]
    assert list(target["requestBody"]["content"]) == ["application/json"]
    assert target["responses"]["404"]  # no storage that presigns
    answer = schema["components"]["schemas"]["UploadTarget"]["properties"]
    assert {"url", "fields", "upload_key", "content_type", "max_bytes", "expires_in"} <= set(answer)
    assert body["metadata"]["additionalProperties"] is False
    assert body["metadata"]["patternProperties"] == {
        "^(?!.*__)[A-Za-z0-9_]{1,32}$": {
            "type": "string",
            "maxLength": 2048,
            "pattern": "^[^\\x00]*$",
        }
    }
    task_create = schema["components"]["schemas"]["TaskCreate"]
    assert set(task_create["required"]) == {"input", "kind"}
    params = {p["name"] for p in paths["/tapestry/api/tasks/"]["get"]["parameters"]}
    assert {"status", "kind", "metadata", "submission", "cursor", "limit"} <= params
    assert "Error" in schema["components"]["schemas"]
    assert paths["/tapestry/api/tasks/{uuid}/"]["get"]["responses"]["404"]


def test_schema_states_the_limits_the_server_applies(client, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "DEFAULT_METADATA": {"tenant": "t1"}}
    schema = client.get(SCHEMA).json()
    components = schema["components"]["schemas"]
    # 32 less submission_id, user_id, the correlation key, campaign, source and tenant
    assert components["SubmissionCreate"]["properties"]["metadata"]["maxProperties"] == 26
    assert components["TaskCreate"]["properties"]["metadata"]["maxProperties"] == 26
    task = components["Task"]["properties"]
    assert task["attempts"]["type"] == "array"
    assert {"type": "string", "maxLength": 0} in task["output_url"]["anyOf"]
    assert {"type": "string", "maxLength": 0} in components["Submission"]["properties"]["file_url"][
        "anyOf"
    ]
    get_task = schema["paths"]["/tapestry/api/tasks/{uuid}/"]["get"]
    assert get_task["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    assert "Retry-After" in get_task["responses"]["429"]["headers"]
    limit = next(
        p
        for p in schema["paths"]["/tapestry/api/tasks/"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}


@pytest.mark.parametrize("path", ["tasks/not-a-uuid/", "nothing/here/", "tasks"])
def test_unknown_api_paths_are_json_404s(client, path) -> None:
    response = client.get(SUBMISSIONS.removesuffix("submissions/") + path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"kind": "not_found", "message": "Not found."}}
    # positive control: outside the API the host's own 404 page answers
    assert client.get("/elsewhere/").headers["Content-Type"].startswith("text/html")


def test_metadata_over_the_client_limit_is_refused(user) -> None:
    client = APIClient()
    client.force_authenticate(user)
    limit = 32 - 5  # submission_id, user_id, the correlation key, campaign, source
    for count, expected in ((limit, 201), (limit + 1, 400)):
        meta = {f"k{i}": "v" for i in range(count)}
        response = client.post(
            SUBMISSIONS, {"file": video_upload(), "metadata": json.dumps(meta)}, format="multipart"
        )
        assert response.status_code == expected, response.json()
    assert "at most 27 are allowed" in response.json()["error"]["message"]


@pytest.mark.parametrize("value", ["0", "101", "x", "-1", "\u0661"])
def test_bad_limit_is_a_400(user, value) -> None:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(TASKS, {"limit": value})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "limit": ["must be a whole number from 1 to 100."]
    }
    assert client.get(TASKS, {"limit": "100"}).status_code == 200


def test_nul_in_a_query_or_metadata_value_is_a_400(user) -> None:
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(TASKS, {"kind": "a\x00b"}).status_code == 400
    assert client.get(TASKS, {"kind": "ab"}).status_code == 200
    body = {"input": "x", "kind": "video", "metadata": {"a": "\x00"}}
    response = client.post(TASKS, body, format="json")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]["message"]
