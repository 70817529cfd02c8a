"""Rate limits that work even when the host's ``DEFAULT_THROTTLE_RATES`` lacks our scopes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

READ_SCOPE = "tapestry_media"
WRITE_SCOPE = "tapestry_media_write"
#: Used when ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` has no entry for the scope. A status
#: page polling every 1.5 s makes 40 reads a minute.
DEFAULT_RATES = {READ_SCOPE: "600/minute", WRITE_SCOPE: "60/minute"}


class TapestryRateThrottle(SimpleRateThrottle):
    """Per user (per address for anonymous requests); reads and writes counted apart.

    The host may set either scope's rate in ``DEFAULT_THROTTLE_RATES`` (``None`` switches it off
    on purpose); a missing scope gets the default instead of DRF's ``ImproperlyConfigured``.
    """

    def __init__(self) -> None:
        # The scope depends on the request; the rate is read in allow_request.
        self.scope = READ_SCOPE

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = READ_SCOPE if request.method in SAFE_METHODS else WRITE_SCOPE
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # Read at request time: DRF's class attribute is frozen at import.
        rates: Mapping[str, Any] = api_settings.DEFAULT_THROTTLE_RATES or {}
        scope = self.scope or READ_SCOPE
        if scope in rates:
            return None if rates[scope] is None else str(rates[scope])
        return DEFAULT_RATES[scope]

    def get_cache_key(self, request: Request, view: Any) -> str:
        user = request.user
        ident = f"user-{user.pk}" if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
