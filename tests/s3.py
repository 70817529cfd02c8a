"""A real HTTP S3 endpoint on loopback: moto's server in a thread, behind one layer that refuses
presigned URLs past their expiry as S3 does (moto serves them for ever)."""

from __future__ import annotations

import calendar
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

REGION = "us-east-1"
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


class S3Server:
    def __init__(self) -> None:
        self.app = RefuseExpired(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        host, port = self.server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

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
