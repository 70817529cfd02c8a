"""The Ittybit account's resources beside tasks: Webhook Endpoints and Events (API doc §7).

Both go through :meth:`IttybitBackend.request_json`, so they share its session, retries,
error handling and ``Accept-Version``. Nothing here logs a response body: an endpoint's
``whsec_`` secret is only ever returned to the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from .base import PermanentBackendError

if TYPE_CHECKING:
    from .ittybit import IttybitBackend

ENDPOINTS_PATH = "/webhooks/endpoints"
EVENTS_PATH = "/events"
#: Topics a webhook endpoint may subscribe to.
TOPICS = (
    "task.created",
    "task.updated",
    "task.succeeded",
    "task.failed",
    "run.created",
    "run.updated",
    "run.succeeded",
    "run.failed",
)
#: What ``webhooks create`` subscribes to unless told otherwise: everything about tasks.
DEFAULT_TOPICS = ("task.created", "task.updated", "task.succeeded", "task.failed")
PAGE_SIZE = 100
#: A pass stops after this many pages even if the API keeps saying there are more.
MAX_PAGES = 10_000


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    name: str = ""
    topics: tuple[str, ...] = ()
    status: str = ""
    #: Only in the answer to a create; never shown again by the API.
    secret: str = field(default="", repr=False)


def endpoint_url_problem(url: str) -> str:
    """Why Ittybit would refuse ``url`` as a webhook endpoint ("" when it would not)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return (
            f"{url!r} is not an HTTPS URL: Ittybit delivers webhooks to HTTPS endpoints only, "
            "so an http:// endpoint would never receive an event. Use the site's public "
            "https:// address."
        )
    return ""


def create_endpoint(
    backend: IttybitBackend, *, url: str, topics: tuple[str, ...], name: str = ""
) -> WebhookEndpoint:
    problem = endpoint_url_problem(url)
    if problem:
        raise ValueError(problem)
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown:
        raise ValueError(f"unknown topics {unknown}; known: {', '.join(TOPICS)}")
    body: dict[str, Any] = {"url": url, "topics": list(topics)}
    if name:
        body["name"] = name
    payload, _ = backend.request_json("POST", ENDPOINTS_PATH, body=body)
    return _endpoint(payload)


def list_endpoints(backend: IttybitBackend) -> list[WebhookEndpoint]:
    payload, _ = backend.request_json("GET", ENDPOINTS_PATH)
    return [_endpoint(item) for item in _items(payload)]


def delete_endpoint(backend: IttybitBackend, endpoint_id: str) -> None:
    if not endpoint_id:
        raise ValueError("an endpoint id is required")
    backend.request_json("DELETE", f"{ENDPOINTS_PATH}/{quote(endpoint_id, safe='')}")


def event_pages(
    backend: IttybitBackend, *, kind: str, after: str = ""
) -> Iterator[list[dict[str, Any]]]:
    """``GET /events?kind=&after=&order=asc``, oldest first, page by page, following the
    ``Link: <…>; rel="next"`` header while ``Has-More`` says so. A next link that leaves the
    API's base URL is not followed (the session would send it the API key); the next page is
    then asked for with ``after=<last id>``."""
    query = {"kind": kind, "limit": str(PAGE_SIZE), "order": "asc"}
    if after:
        query["after"] = after
    url, params = EVENTS_PATH, query
    for _ in range(MAX_PAGES):
        payload, response = backend.request_json("GET", url, query=params)
        events = [dict(item) for item in _items(payload) if isinstance(item, Mapping)]
        if events:
            yield events
        if not events or not _has_more(response.headers, response.links):
            return
        link = response.links.get("next", {}).get("url")
        next_url = urljoin(response.url, link) if link else ""
        if next_url.startswith(backend.base_url + "/"):
            url, params = next_url, {}
        else:
            last = events[-1].get("id")
            if not isinstance(last, str) or not last:
                return
            url, params = EVENTS_PATH, {**query, "after": last}


def _has_more(headers: Mapping[str, str], links: Mapping[str, Any]) -> bool:
    flag = headers.get("Has-More")
    if flag is not None:
        return flag.strip().lower() == "true"
    return "next" in links


def _items(payload: object) -> list[Any]:
    """A list answer: a bare array, ``{data: [...]}`` or ``{meta, data: [...]}``."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), list):
        return list(payload["data"])
    raise PermanentBackendError(
        "Ittybit answered a list request with something that is not a list",
        kind="bad_response",
    )


def _endpoint(payload: object) -> WebhookEndpoint:
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
        payload = payload["data"]
    if not isinstance(payload, Mapping) or not isinstance(payload.get("id"), str):
        raise PermanentBackendError(
            "Ittybit answered with something that is not a webhook endpoint", kind="bad_response"
        )
    topics = payload.get("topics")
    secret = payload.get("secret")
    return WebhookEndpoint(
        id=payload["id"],
        url=str(payload.get("url") or ""),
        name=str(payload.get("name") or ""),
        topics=tuple(str(t) for t in topics) if isinstance(topics, list) else (),
        status=str(payload.get("status") or ""),
        secret=secret if isinstance(secret, str) else "",
    )
