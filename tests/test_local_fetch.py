"""The local engine fetches URL inputs without becoming an SSRF proxy."""

from __future__ import annotations

import io
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tapestry_media.conf import get_settings
from tapestry_media.local.fetch import FetchRefused, Policy, fetch, is_public

REFUSED = [
    ("http://127.0.0.1/", "not a public address"),
    ("http://localhost/", "is local"),
    ("http://[::1]/", "not a public address"),
    ("http://2130706433/", "not a public address"),  # 127.0.0.1 as one decimal number
    ("http://169.254.169.254/latest/meta-data/", "not a public address"),
    ("http://10.0.0.1/", "not a public address"),
    ("http://192.168.1.1/", "not a public address"),
    ("http://[::ffff:127.0.0.1]/", "not a public address"),  # IPv4-mapped IPv6
    ("http://0.0.0.0/", "not a public address"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("ftp://example.com/a.mov", "scheme 'ftp' is not allowed"),
    ("gopher://example.com/", "scheme 'gopher' is not allowed"),
    ("http://user:pw@example.com/", "credentials"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_before_any_connection(url: str, reason: str, no_network) -> None:
    # no_network turns any connect() into an AssertionError, so a refusal that came from a
    # failed connection (rather than the policy) would not pass as FetchRefused.
    with pytest.raises(FetchRefused, match=reason):
        fetch(url, io.BytesIO(), config=get_settings())


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.2", False),
        ("172.16.5.4", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def only_127_0_0_1(address) -> bool:
    """Test seam: this one loopback address stands in for a public host."""
    return str(address) == "127.0.0.1"


def test_an_allowed_host_is_fetched(server: str) -> None:
    Handler.routes = {"/clip.mp4": (200, {}, b"video-bytes")}
    out = io.BytesIO()
    fetch(f"{server}/clip.mp4", out, config=get_settings(), policy=policy())
    assert out.getvalue() == b"video-bytes"


def policy() -> Policy:
    return Policy(get_settings(), allow_address=only_127_0_0_1)


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/x", "http://localhost:{port}/x"])
def test_a_redirect_to_loopback_is_refused(server: str, target: str) -> None:
    port = server.rsplit(":", 1)[1]
    Handler.routes = {
        "/start": (302, {"Location": target.format(port=port)}, b""),
        "/x": (200, {}, b"secret"),
    }
    out = io.BytesIO()
    with pytest.raises(FetchRefused, match=r"public address|is local"):
        fetch(f"{server}/start", out, config=get_settings(), policy=policy())
    assert out.getvalue() == b""
    Handler.routes["/start"] = (302, {"Location": "/x"}, b"")  # positive control
    fetch(f"{server}/start", out, config=get_settings(), policy=policy())
    assert out.getvalue() == b"secret"


def test_the_connected_peer_is_checked_too(server: str, monkeypatch) -> None:
    """If DNS answered a public address at check time but the connection reached a private one
    (rebinding), the peer check refuses it."""
    from tapestry_media.local import fetch as local_fetch

    monkeypatch.setattr(
        local_fetch, "resolve", lambda host, port: [ipaddress.ip_address("93.184.215.14")]
    )
    strict = Policy(get_settings())  # the real policy: loopback is not allowed
    Handler.routes = {"/clip.mp4": (200, {}, b"video-bytes")}
    out = io.BytesIO()
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1, which is not a public address"):
        fetch(f"{server}/clip.mp4", out, config=get_settings(), policy=strict)
    assert out.getvalue() == b""


def test_size_limit(server: str, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "LOCAL_MAX_INPUT_BYTES": 10}
    Handler.routes = {"/big": (200, {}, b"x" * 11), "/ok": (200, {}, b"x" * 10)}
    with pytest.raises(FetchRefused, match="limit"):
        fetch(f"{server}/big", io.BytesIO(), config=get_settings(), policy=policy())
    out = io.BytesIO()
    fetch(f"{server}/ok", out, config=get_settings(), policy=policy())
    assert len(out.getvalue()) == 10


def test_http_errors_are_refusals(server: str) -> None:
    Handler.routes = {}
    with pytest.raises(FetchRefused, match="HTTP 404"):
        fetch(f"{server}/missing", io.BytesIO(), config=get_settings(), policy=policy())
