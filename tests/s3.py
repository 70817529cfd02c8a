"""A real HTTP S3 endpoint on loopback: moto's server in a thread, behind layers that do what
S3 does and moto does not: refuse presigned URLs past their expiry (moto serves them for ever),
check a browser-style POST upload against its signed policy (moto stores any POST), and copy
only the version ``x-amz-copy-source-if-match`` names (moto ignores it); and one that plays an
outage (503s) for the requests a test picks."""

from __future__ import annotations

import base64
import calendar
import contextlib
import hashlib
import hmac
import io
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.formparser import parse_form_data
from werkzeug.serving import make_server

REGION = "us-east-1"
#: In the User-Agent of the harness's own client (``S3Server.client``): not counted as the app's.
HARNESS = "tapestry-test-harness"
KEY_ID = "tapestry-test-key"
SECRET = "tapestry-test-secret"
EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def expires_at(query: dict[str, list[str]]) -> float | None:
    """When a query-signed URL stops working: SigV4 (``X-Amz-Date`` + ``X-Amz-Expires``) or
    SigV2 (``Expires``, Unix seconds); None for a request not signed in its query."""
    if "X-Amz-Expires" in query and "X-Amz-Date" in query:
        signed = time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
        return calendar.timegm(signed) + int(query["X-Amz-Expires"][0])
    if "Expires" in query and "Signature" in query:
        return float(query["Expires"][0])
    return None


class RefuseExpired:
    """WSGI: a presigned request past its expiry gets S3's 403 ``AccessDenied``; every other
    request goes to moto unchanged."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.refused: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        deadline = expires_at(parse_qs(environ.get("QUERY_STRING", "")))
        if deadline is not None and time.time() > deadline:
            self.refused.append(environ.get("PATH_INFO", ""))
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [EXPIRED]
        return self.app(environ, start_response)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def policy_signature(policy_b64: str, credential: str) -> str:
    """SigV4 of a POST policy: ``credential`` is ``<key id>/<date>/<region>/s3/aws4_request``."""
    _key_id, date, region, service, _end = credential.split("/")
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{SECRET}".encode(), date), region), service), "aws4_request"
    )
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def policy_problem(bucket: str, form: dict[str, str], size: int) -> tuple[int, str, str] | None:
    """Why S3 would refuse this POST upload (status, code, message), or None. Checks the
    signature, the expiry, every condition, and that each form field is covered by one."""
    policy_b64 = form.get("policy", "")
    credential = form.get("x-amz-credential", "")
    try:
        expected = policy_signature(policy_b64, credential)
        policy = json.loads(base64.b64decode(policy_b64))
    except ValueError:
        return 403, "AccessDenied", "Invalid Policy: malformed."
    if not hmac.compare_digest(expected, form.get("x-amz-signature", "")):
        return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
    expiry = calendar.timegm(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S"))
    if time.time() > expiry:
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    values = {k.lower(): v for k, v in form.items()} | {"bucket": bucket}
    covered = {"policy", "x-amz-signature", "file"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            [(name, wanted)] = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            if not condition[1] <= size <= condition[2]:
                code = "EntityTooLarge" if size > condition[2] else "EntityTooSmall"
                return 400, code, "Your proposed upload exceeds the allowed size."
            continue
        else:
            op, name, wanted = condition[0], condition[1].lstrip("$").lower(), condition[2]
        covered.add(name)
        value = values.get(name)
        if value is None or not (value == wanted if op == "eq" else value.startswith(wanted)):
            failed = f"Invalid according to Policy: Policy Condition failed: {condition}"
            return 403, "AccessDenied", failed
    extra = [k for k in values if k not in covered and not k.startswith("x-ignore-")]
    if extra:
        return 403, "AccessDenied", f"Invalid according to Policy: Extra input field: {extra[0]}"
    return None


class EnforcePostPolicy:
    """WSGI: a multipart POST to a bucket (a browser upload) must satisfy its signed policy;
    refused ones are recorded in ``refused`` and never reach moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.refused: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ["REQUEST_METHOD"] != "POST" or not content_type.startswith("multipart/"):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        _stream, form, files = parse_form_data({**environ, "wsgi.input": io.BytesIO(body)})
        upload = files.get("file")
        size = len(upload.read()) if upload is not None else 0
        bucket = environ.get("PATH_INFO", "").strip("/").split("/")[0]
        problem = policy_problem(bucket, dict(form.items()), size)
        if problem is None:
            return self.app(environ, start_response)
        status, code, message = problem
        self.refused.append(code)
        reason = {400: "Bad Request", 403: "Forbidden"}[status]
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/xml"), ("Access-Control-Allow-Origin", "*")],
        )
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return [b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml.encode()]


SLOW_DOWN = (
    b"<Error><Code>ServiceUnavailable</Code><Message>Reduce your request rate.</Message></Error>"
)


class Outage:
    """WSGI: while ``fail_when(method, path, headers)`` says so, S3's 503 instead of moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.fail_when: Callable[[str, str, dict[str, str]], bool] | None = None
        self.failed = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {
            k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k[:5] == "HTTP_"
        }
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if self.fail_when is not None and self.fail_when(method, path, headers):
            self.failed += 1
            start_response("503 Service Unavailable", [("Content-Type", "application/xml")])
            return [SLOW_DOWN]
        return self.app(environ, start_response)


PRECONDITION_FAILED = (
    b"<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you "
    b"specified did not hold</Message><Condition>x-amz-copy-source-If-Match</Condition></Error>"
)


class CopySourceIfMatch:
    """WSGI: a CopyObject with ``x-amz-copy-source-if-match`` copies only if the source's ETag
    is that one, else S3's 412 (moto ignores the header). ``etag_of(bucket, key)`` asks."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], etag_of: Callable[[str, str], str | None]
    ) -> None:
        self.app = app
        self.etag_of = etag_of

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        wanted = environ.get("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH")
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if environ["REQUEST_METHOD"] == "PUT" and wanted and source:
            bucket, _, key = unquote(source.split("?")[0]).lstrip("/").partition("/")
            if self.etag_of(bucket, key) != wanted:
                start_response("412 Precondition Failed", [("Content-Type", "application/xml")])
                return [b'<?xml version="1.0" encoding="UTF-8"?>\n' + PRECONDITION_FAILED]
        return self.app(environ, start_response)


def operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    """The S3 API operation a path-style request is (the names boto3 gives them)."""
    on_key = "/" in path.strip("/")
    part = "partNumber" in query
    if method == "HEAD":
        return "HeadObject" if on_key else "HeadBucket"
    if method == "GET" and not on_key:
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    if method == "GET":
        return "ListParts" if "uploadId" in query else "GetObject"
    if method == "PUT" and not on_key:
        return "CreateBucket"
    if method == "PUT" and "x-amz-copy-source" in headers:
        return "UploadPartCopy" if part else "CopyObject"
    if method == "PUT":
        return "UploadPart" if part else "PutObject"
    if method == "POST" and not on_key:
        return "DeleteObjects" if "delete" in query else "PostObject"  # a browser form upload
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if method == "DELETE":
        if not on_key:
            return "DeleteBucket"
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method} {path}"


class CountRequests:
    """WSGI: while a :meth:`counting` block runs, the requests that reach S3 (refused ones
    too: each is a round trip, and S3 bills it), by operation; the harness's own are left out."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        counts = self.counts
        if counts is not None and HARNESS not in environ.get("HTTP_USER_AGENT", ""):
            headers = {
                k[5:].replace("_", "-").lower(): str(v)
                for k, v in environ.items()
                if k[:5] == "HTTP_"
            }
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            name = operation(
                environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), query, headers
            )
            with self.lock:
                counts[name] += 1
        return self.app(environ, start_response)

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        self.counts = Counter()
        try:
            yield self.counts
        finally:
            self.counts = None


class S3Server:
    def __init__(self) -> None:
        self.posts = EnforcePostPolicy(DomainDispatcherApplication(create_backend_app))
        self.outage = Outage(CopySourceIfMatch(self.posts, self.etag_of))
        self.requests = CountRequests(RefuseExpired(self.outage))
        self.app = self.requests
        self.server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        host, port = self.server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def fail_when(self) -> Callable[[str, str, dict[str, str]], bool] | None:
        """Set a predicate of (method, path, headers) to answer matching requests with 503."""
        return self.outage.fail_when

    @fail_when.setter
    def fail_when(self, value: Callable[[str, str, dict[str, str]], bool] | None) -> None:
        self.outage.fail_when = value

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(user_agent_extra=HARNESS),
        )

    def etag_of(self, bucket: str, key: str) -> str | None:
        try:
            etag: str = self.client().head_object(Bucket=bucket, Key=key)["ETag"]
        except ClientError:
            return None
        return etag

    def new_bucket(self) -> str:
        name = f"tapestry-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


def running_server() -> Iterator[S3Server]:
    server = S3Server()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.thread.join(timeout=10)


def use_s3(settings: Any, server: S3Server, bucket: str, *, expire: int = 2) -> None:
    """The S3 storage of django-storages on ``bucket`` as the default storage, signing URLs
    that live ``expire`` seconds."""
    settings.AWS_S3_ENDPOINT_URL = server.endpoint
    settings.AWS_S3_REGION_NAME = REGION
    settings.AWS_S3_ACCESS_KEY_ID = KEY_ID
    settings.AWS_S3_SECRET_ACCESS_KEY = SECRET
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_SIGNATURE_VERSION = "s3v4"
    settings.AWS_S3_ADDRESSING_STYLE = "path"
    settings.AWS_QUERYSTRING_AUTH = True
    settings.AWS_QUERYSTRING_EXPIRE = expire
    settings.AWS_DEFAULT_ACL = None
    settings.STORAGES = {
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def on_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname == "127.0.0.1"


@pytest.fixture
def loopback_only(monkeypatch: Any) -> None:
    """Traffic goes to 127.0.0.1 only (moto, the database): boto3 must not look for
    credentials or a region anywhere else."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family == socket.AF_UNIX or address[0] == "127.0.0.1":
            return real_connect(sock, address)
        raise AssertionError(f"connection to {address!r}: only 127.0.0.1 is allowed")

    monkeypatch.setattr(socket.socket, "connect", guarded)
