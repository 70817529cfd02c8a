"""Fetching a URL input for the local engine without becoming an SSRF proxy.

Refused: schemes outside ``LOCAL_ALLOWED_SCHEMES``; hosts that resolve to loopback, private,
link-local, multicast, reserved or unspecified addresses (IPv4-mapped IPv6 included), unless
``LOCAL_ALLOW_PRIVATE_ADDRESSES``. Every address a name resolves to is checked *before*
connecting, and the address actually connected to is checked again *after* connecting, so a
DNS answer that changes in between (rebinding) is caught too. Redirects are followed by hand,
each hop checked the same way. The body is streamed to a file with a size limit.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..conf import Settings

MAX_REDIRECTS = 5
CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(Exception):
    """The URL may not be fetched, or fetching it failed. The message says why."""


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"cannot resolve {host!r}: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


class Policy:
    """Which URLs and addresses may be fetched. ``allow_address`` is the single test seam."""

    def __init__(self, config: Settings, allow_address: Callable[[IPAddress], bool] | None = None):
        self.schemes = {s.lower() for s in config.LOCAL_ALLOWED_SCHEMES}
        self.allow_private = config.LOCAL_ALLOW_PRIVATE_ADDRESSES
        self.allow_address = allow_address or is_public

    def check_url(self, url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes)) or "none"
            raise FetchRefused(f"the URL scheme {scheme or '(none)'!r} is not allowed ({allowed})")
        if not parts.hostname:
            raise FetchRefused(f"the URL {url!r} has no host")
        if parts.username or parts.password:
            raise FetchRefused("URLs with credentials are not fetched")
        host = parts.hostname
        if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
            raise FetchRefused(f"the host {host!r} is local")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:  # "http://x:99999/": urllib raises on reading the port
            raise FetchRefused(f"the URL {url!r} has an invalid port") from exc
        for address in resolve(host, port):
            self.check_address(address, host)
        return host, port

    def check_address(self, address: IPAddress, host: str) -> None:
        if not self.allow_private and not self.allow_address(address):
            raise FetchRefused(f"{host!r} resolves to {address}, which is not a public address")


def fetch(
    url: str, destination: IO[bytes], *, config: Settings, policy: Policy | None = None
) -> str:
    """Stream ``url`` into ``destination``; returns the final URL. Raises FetchRefused."""
    policy = policy or Policy(config)
    session = _session(policy)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            policy.check_url(url)
            try:
                response = session.get(
                    url,
                    stream=True,
                    allow_redirects=False,
                    timeout=(config.CONNECT_TIMEOUT, config.LOCAL_FETCH_TIMEOUT),
                    headers={"User-Agent": "tapestry-media-local-engine"},
                )
            except requests.RequestException as exc:
                raise FetchRefused(f"fetching {url} failed: {_root(exc)}") from exc
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise FetchRefused(f"fetching {url} answered HTTP {response.status_code}")
                _copy(response, destination, config.LOCAL_MAX_INPUT_BYTES)
                return url
        raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
    finally:
        session.close()


def _copy(response: requests.Response, destination: IO[bytes], limit: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchRefused(f"the input is {declared} bytes; the limit is {limit}")
    written = 0
    for chunk in response.iter_content(CHUNK):
        written += len(chunk)
        if written > limit:
            raise FetchRefused(f"the input is larger than the limit of {limit} bytes")
        destination.write(chunk)


def _root(exc: BaseException) -> BaseException:
    while exc.__context__ is not None and not isinstance(exc, FetchRefused):
        exc = exc.__context__
    return exc


# --- connections that check the peer they really reached -----------------------------------


def _checked_connection(base: type[HTTPConnection], policy: Policy) -> type[HTTPConnection]:
    class Checked(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
            try:
                policy.check_address(peer, str(self.host))
            except FetchRefused:
                sock.close()
                raise
            return sock

    return Checked


class _Adapter(HTTPAdapter):
    def __init__(self, policy: Policy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type(
            "CheckedHTTPPool",
            (HTTPConnectionPool,),
            {"ConnectionCls": _checked_connection(HTTPConnection, self.policy)},
        )
        https = type(
            "CheckedHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": _checked_connection(HTTPSConnection, self.policy)},
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


def _session(policy: Policy) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the checks must see the peer
    adapter = _Adapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
