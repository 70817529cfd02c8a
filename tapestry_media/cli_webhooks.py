"""``manage.py ittybit webhooks create|list|delete``: this site's Ittybit webhook endpoint.

``create`` registers the endpoint (``POST /webhooks/endpoints``) and returns the ``whsec_``
secret Ittybit issues, which it shows only once; the command prints it to stdout and nowhere
else (never to a log), for the operator to put in ``WEBHOOK_SECRETS``.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.views.decorators.debug import sensitive_variables

from .backends import BackendError, get_backend
from .backends.ittybit import IttybitBackend
from .backends.ittybit_resources import (
    DEFAULT_TOPICS,
    TOPICS,
    WebhookEndpoint,
    create_endpoint,
    delete_endpoint,
    endpoint_url_problem,
    list_endpoints,
)
from .conf import get_settings

__all__ = ["DEFAULT_TOPICS", "TOPICS", "create", "delete", "endpoints", "secret_notice", "table"]


def _backend() -> IttybitBackend:
    if not get_settings().API_KEY:
        raise CommandError(
            "no Ittybit API key is configured: set TAPESTRY_MEDIA['API_KEY'] to manage "
            "webhook endpoints."
        )
    backend = get_backend("ittybit")
    assert isinstance(backend, IttybitBackend)
    return backend


def target_url(url: str | None) -> str:
    """The URL to register: ``--url``, else ``WEBHOOK_URL``; refused unless HTTPS."""
    chosen = url or get_settings().WEBHOOK_URL
    if not chosen:
        raise CommandError(
            "give the endpoint's public URL with --url https://… (this site's webhook view, "
            "e.g. https://example.com/media/webhooks/ittybit/), or set WEBHOOK_URL."
        )
    problem = endpoint_url_problem(chosen)
    if problem:
        raise CommandError(problem)
    return chosen


@sensitive_variables("endpoint")
def create(*, url: str | None, topics: list[str] | None, name: str) -> WebhookEndpoint:
    chosen = target_url(url)
    try:
        endpoint = create_endpoint(
            _backend(), url=chosen, topics=tuple(topics or DEFAULT_TOPICS), name=name
        )
    except (BackendError, ValueError) as exc:
        raise CommandError(f"could not create the webhook endpoint: {exc}") from exc
    if not endpoint.secret.startswith("whsec_"):
        raise CommandError(
            f"Ittybit created endpoint {endpoint.id} but returned no whsec_ secret; delete it "
            f"(manage.py ittybit webhooks delete {endpoint.id}) and create it again."
        )
    return endpoint


@sensitive_variables("endpoint")
def secret_notice(endpoint: WebhookEndpoint) -> str:
    """What ``create`` prints: the endpoint, then its secret, once."""
    return (
        f"Created webhook endpoint {endpoint.id} for {endpoint.url}\n"
        f"topics: {', '.join(endpoint.topics)}\n\n"
        "Its signing secret, shown this once (Ittybit does not show it again):\n\n"
        f"    {endpoint.secret}\n\n"
        "Store it now in TAPESTRY_MEDIA['WEBHOOK_SECRETS'] (for example from an environment "
        "variable); webhooks signed with it are refused until it is there."
    )


def endpoints() -> list[WebhookEndpoint]:
    try:
        return list_endpoints(_backend())
    except BackendError as exc:
        raise CommandError(f"could not list webhook endpoints: {exc}") from exc


def delete(endpoint_id: str) -> None:
    try:
        delete_endpoint(_backend(), endpoint_id)
    except BackendError as exc:
        raise CommandError(f"could not delete webhook endpoint {endpoint_id!r}: {exc}") from exc


def table(rows: list[WebhookEndpoint]) -> str:
    if not rows:
        return "no webhook endpoints"
    lines = [f"{'ID':<24} {'STATUS':<9} URL  TOPICS"]
    lines += [f"{e.id:<24} {e.status:<9} {e.url}  {','.join(e.topics)}" for e in rows]
    return "\n".join(lines)
