"""The Ittybit task API over HTTP(S): one pooled session, quick retries, typed errors.

Retries are urllib3's :class:`~urllib3.util.retry.Retry`, mounted on the session's adapter, so
every status, connection and read error goes through one tested policy instead of a loop of
our own. :class:`RetryPolicy` adds what urllib3 lacks: an injectable sleep and clock (tests
assert the exact delays), backoff from the very first retry, tolerant ``Retry-After`` parsing,
and handing a ``Retry-After`` longer than ``HTTP_BACKOFF_MAX`` to the caller (the submit job's
own backoff) instead of blocking a worker. POST is retried too: every create carries an
``Idempotency-Key``, so a retry can never make a second task.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from html import unescape
from random import random as _uniform
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode, urlsplit

import requests
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from .. import __version__
from ..conf import Settings
from ..remote import RemoteTask, loads, parse_error, parse_task
from .base import (
    AuthenticationError,
    BackendError,
    BaseBackend,
    PermanentBackendError,
    TaskSpec,
    TransientBackendError,
)

logger = logging.getLogger("tapestry_media.backends.ittybit")

#: 408, 409 (idempotency key in flight), 429 and every 5xx: the same request may succeed later.
RETRY_STATUSES = frozenset({408, 409, 429, *range(500, 600)})
RETRY_METHODS = frozenset({"GET", "POST"})
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{16,32}")
_DEFAULT_KINDS = {
    400: "request_invalid",
    401: "authentication_invalid",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    422: "request_invalid",
    429: "rate_limited",
}
_MAX_MESSAGE = 500


# --- retry policy -----------------------------------------------------------------------------


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date. ``None`` when
    absent or unreadable (then the exponential backoff applies)."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


class RetryPolicy(Retry):
    """urllib3's ``Retry`` with an injectable ``sleep``, ``clock`` and ``random``.

    Delay before retry *n* (1-based): ``Retry-After`` when the answer has one, else
    ``min(backoff_max, backoff_factor * 2 ** (n - 1) + backoff_jitter * random())``.
    urllib3's own formula does not wait at all before the first retry.
    """

    # Only ``status_forcelist`` decides which statuses are retried (urllib3 adds 413).
    RETRY_AFTER_STATUS_CODES = frozenset[int]()

    def __init__(
        self,
        *args: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _uniform,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sleeper = sleep
        self.clock = clock
        self.random = random

    def new(self, **kw: Any) -> Self:
        fresh = super().new(**kw)
        fresh.sleeper, fresh.clock, fresh.random = self.sleeper, self.clock, self.random
        return fresh

    @property
    def attempts(self) -> int:
        """Requests made so far, counting the one this policy governs next."""
        return len(self.history) + 1

    def get_backoff_time(self) -> float:
        retries = len(self.history)
        if retries == 0:
            return 0.0
        delay = self.backoff_factor * 2 ** (retries - 1) + self.backoff_jitter * self.random()
        return float(min(self.backoff_max, max(0.0, delay)))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        return retry_after_seconds(response.headers.get("Retry-After"), now=self.clock())

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        delay = self.get_retry_after(response) if response is not None else None
        if delay is None:
            delay = self.get_backoff_time()
        if delay > 0:
            self.sleeper(delay)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if response is not None:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.backoff_max:
                # Honouring it here would block the worker past HTTP_BACKOFF_MAX; retrying
                # sooner would not honour it. The caller gets the response (and retry_after).
                reason = ResponseError(f"Retry-After {wait:g}s exceeds the backoff cap")
                raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


# --- the backend ------------------------------------------------------------------------------


class _BearerAuth(AuthBase):
    """Sets ``Authorization``; also keeps requests from consulting ``~/.netrc``."""

    @sensitive_variables("api_key")
    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    @sensitive_variables()
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


class IttybitBackend(BaseBackend):
    """Creates and fetches tasks with the Ittybit API (``docs/ittybit-api.md``).

    One instance holds one pooled ``requests.Session`` and may be shared between threads.
    ``sleep``, ``clock``, ``jitter`` and ``random`` are for tests: ``jitter`` is the most
    random seconds added to each backoff (default ``HTTP_BACKOFF_FACTOR``).
    """

    name = "ittybit"
    supports_get = True
    delivers_results = True
    #: Topics the Events backfill reads (results; progress ticks are not worth a backfill).
    BACKFILL_KINDS = ("task.succeeded", "task.failed")

    @sensitive_variables("config")
    def __init__(
        self,
        config: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: float | None = None,
        random: Callable[[], float] = _uniform,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__(config)
        self._clock = clock
        self.base_url = config.API_BASE_URL.rstrip("/")
        path = "/jobs" if config.API_MODE == "jobs" else config.TASKS_PATH.rstrip("/")
        self.tasks_url = self.base_url + path
        #: The Events resource (``GET /events``) came with the jobs API.
        self.supports_events = config.API_MODE == "jobs"
        self.timeout = (config.CONNECT_TIMEOUT, config.READ_TIMEOUT)
        self.retry = RetryPolicy(
            total=config.HTTP_RETRIES,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=RETRY_METHODS,
            backoff_factor=config.HTTP_BACKOFF_FACTOR,
            backoff_max=config.HTTP_BACKOFF_MAX,
            backoff_jitter=config.HTTP_BACKOFF_FACTOR if jitter is None else jitter,
            raise_on_status=False,
            sleep=sleep,
            clock=clock,
            random=random,
        )
        self.session = self._build_session(pool_maxsize)

    @sensitive_variables("session")
    def _build_session(self, pool_maxsize: int) -> requests.Session:
        # The key never becomes a local here: with DEBUG=True Django shows every local.
        session = requests.Session()
        session.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"tapestry-media/{__version__}",
            }
        )
        if self.config.accept_version:
            session.headers["Accept-Version"] = self.config.accept_version
        session.auth = _BearerAuth(self.config.API_KEY)
        # The API is stateless; a shared cookie jar would only be a cross-thread hazard.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_maxsize=pool_maxsize, max_retries=self.retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # --- the interface

    def create(self, spec: TaskSpec, *, idempotency_key: str) -> RemoteTask:
        check_idempotency_key(idempotency_key)
        body = json.dumps(self.payload_for(spec), ensure_ascii=False).encode()
        response = self._send(
            "POST", self.tasks_url, body=body, headers={"Idempotency-Key": idempotency_key}
        )
        return self._task_from(response)

    def get(self, remote_id: str) -> RemoteTask:
        if not remote_id:
            raise ValueError("remote_id must not be empty")
        return self._task_from(self._send("GET", f"{self.tasks_url}/{quote(remote_id, safe='')}"))

    def close(self) -> None:
        self.session.close()

    def event_pages(self, *, kind: str, after: str = "") -> Iterator[list[dict[str, Any]]]:
        from .ittybit_resources import event_pages

        return event_pages(self, kind=kind, after=after)

    # --- the account's resources (webhook endpoints, events): see ittybit_resources

    def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[Any, requests.Response]:
        """One call to ``path_or_url`` (a path under the base URL, or a URL on it); the parsed
        JSON body (``None`` when empty) and the response. Non-2xx raises a ``BackendError``."""
        url = (
            path_or_url
            if path_or_url.startswith(self.base_url + "/")
            else self.base_url + path_or_url
        )
        if query:
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        response = self._send(method, url, body=data)
        if not 200 <= response.status_code < 300:
            raise self._status_error(response)
        if not response.content:
            return None, response
        try:
            return loads(response.content), response
        except ValueError as exc:
            raise TransientBackendError(
                f"Ittybit answered {response.status_code} with a body that is not JSON ({exc})",
                kind="bad_response",
                status_code=response.status_code,
            ) from exc

    def payload_for(self, spec: TaskSpec) -> dict[str, Any]:
        """The create body: the spec's fields, with ``WEBHOOK_URL`` when the spec has none.
        ``POST /jobs`` takes the seed's four fields only: its webhooks go to the endpoints
        registered with ``manage.py ittybit webhooks create``."""
        payload = spec.as_payload()
        if self.config.API_MODE == "jobs":
            payload.pop("webhook_url", None)
        elif "webhook_url" not in payload and self.config.WEBHOOK_URL:
            payload["webhook_url"] = self.config.WEBHOOK_URL
        return payload

    # --- one step each

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if not self.config.API_KEY:
            raise AuthenticationError(
                "no Ittybit API key is configured: set TAPESTRY_MEDIA['API_KEY'].",
                kind="authentication_missing",
            )
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                headers=dict(headers or {}),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise _transport_error(method, url, exc) from exc
        logger.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
        return response

    def _task_from(self, response: requests.Response) -> RemoteTask:
        if not 200 <= response.status_code < 300:
            raise self._status_error(response)
        try:
            return parse_task(loads(response.content))
        except (ValueError, ArithmeticError) as exc:  # PayloadError is a ValueError
            # Transient, not permanent: on a create the 2xx means the task most likely exists,
            # and a retry with the same Idempotency-Key recovers it; failing the Task for good
            # would make its real result (webhook) unable to land on a terminal row.
            raise TransientBackendError(
                f"Ittybit answered {response.status_code} with a body that is not a task "
                f"({exc}): {_snippet(response.text)!r}",
                kind="bad_response",
                status_code=response.status_code,
            ) from exc

    def _status_error(self, response: requests.Response) -> BackendError:
        status = response.status_code
        kind, message = error_details(response)
        kind = kind or _DEFAULT_KINDS.get(status, "server_error" if status >= 500 else "")
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), now=self._clock())
        details: dict[str, Any] = {
            "kind": kind,
            "status_code": status,
            "retry_after": retry_after,
        }
        if status == 401:
            return AuthenticationError(
                f"Ittybit rejected the API key (401: {message}). Check "
                "TAPESTRY_MEDIA['API_KEY'] holds a valid key for this account.",
                **details,
            )
        if status in RETRY_STATUSES:
            attempts = _attempts(response)
            plural = "s" if attempts != 1 else ""
            return TransientBackendError(f"{message} (after {attempts} attempt{plural})", **details)
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            return PermanentBackendError(
                f"Ittybit answered {status} redirecting to {location}: check "
                "TAPESTRY_MEDIA['API_BASE_URL'] and ['TASKS_PATH'].",
                **{**details, "kind": "unexpected_redirect"},
            )
        return PermanentBackendError(message, **{**details, "kind": kind or "request_failed"})


def check_idempotency_key(key: str) -> None:
    """16 to 32 visible ASCII characters (the API's limit; no spaces, nothing to escape)."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(
            f"an Idempotency-Key must be 16 to 32 visible ASCII characters, not {key!r}"
        )


def error_details(response: requests.Response) -> tuple[str, str]:
    """``(kind, message)`` from any error body: ``{kind, message}``, ``{message}``,
    ``{error: {message}}``, plain text or HTML; the HTTP reason when the body is empty."""
    parsed: dict[str, str] | None = None
    try:
        parsed = parse_error(response.json())
    except ValueError:
        text = _snippet(response.text)
        parsed = {"kind": "", "message": text} if text else None
    kind = parsed["kind"] if parsed else ""
    message = parsed["message"] if parsed and parsed["message"] else ""
    if not message:
        message = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return kind, message


def _snippet(text: str) -> str:
    """Text or HTML, reduced to one readable line."""
    if "<" in text:
        text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
        text = unescape(re.sub(r"<[^>]+>", " ", text))
    text = " ".join(text.split())
    return text[:_MAX_MESSAGE] + ("…" if len(text) > _MAX_MESSAGE else "")


def _attempts(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    return retries.attempts if isinstance(retries, RetryPolicy) else 1


def _transport_error(method: str, url: str, exc: requests.RequestException) -> BackendError:
    reason: object = exc
    where = f"{method} {urlsplit(url).path}"
    if exc.args and isinstance(exc.args[0], MaxRetryError):
        reason = exc.args[0].reason
        where += " (retries spent)"
    if isinstance(reason, NewConnectionError):
        kind = "connection_error"
    elif isinstance(exc, requests.Timeout) or isinstance(
        reason, ReadTimeoutError | ConnectTimeoutError
    ):
        kind = "timeout"
    elif isinstance(
        exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError
    ) or isinstance(reason, OSError):
        kind = "connection_error"
    else:
        return PermanentBackendError(f"{where}: could not send: {exc}", kind="request_invalid")
    return TransientBackendError(f"{where}: {kind.replace('_', ' ')}: {reason}", kind=kind)
