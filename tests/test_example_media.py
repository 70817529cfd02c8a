"""The example site serves MEDIA_ROOT with HTTP Range (example_project/example/media.py)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from .browser.site import serve_media_through_urls, use_example_site

DATA = bytes(range(256)) * 40  # 10 240 bytes, each offset's value predictable


@pytest.fixture(autouse=True)
def clip(settings) -> Path:
    use_example_site(settings)
    path = Path(settings.MEDIA_ROOT) / "tapestry_media" / "outputs" / "clip.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA)
    return path


def get(client, path: str = "/media/tapestry_media/outputs/clip.mp4", **headers: str):
    return client.get(path, headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_gets_206_with_content_range(client) -> None:
    response = get(client, Range="bytes=0-99")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-99/{len(DATA)}"
    assert response["Content-Length"] == "100"
    assert response["Content-Type"] == "video/mp4"
    assert body(response) == DATA[:100]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=1000-", 1000, len(DATA) - 1),  # open-ended: to the end
        ("bytes=-100", len(DATA) - 100, len(DATA) - 1),  # the last 100 bytes
        ("bytes=10000-99999", 10000, len(DATA) - 1),  # clipped to the file
        ("bytes=5-5", 5, 5),
    ],
)
def test_range_forms(client, header: str, first: int, last: int) -> None:
    response = get(client, Range=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert body(response) == DATA[first : last + 1]


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=99999-100000", "bytes=-0"])
def test_an_unsatisfiable_range_gets_416(client, header: str) -> None:
    response = get(client, Range=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["", "bytes=0-1,5-9", "items=0-5", "bytes=9-3"])
def test_no_or_an_unparsed_range_gets_the_whole_file(client, header: str) -> None:
    response = get(client, **({"Range": header} if header else {}))
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == DATA


def test_head_and_post(client) -> None:
    assert client.head("/media/tapestry_media/outputs/clip.mp4").status_code == 200
    assert client.post("/media/tapestry_media/outputs/clip.mp4").status_code == 405


def test_only_files_under_media_root(client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"  # MEDIA_ROOT is tmp_path / "media"
    secret.write_bytes(b"not media")
    (Path(settings.MEDIA_ROOT) / "escape").symlink_to(secret)
    for path in (
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/tapestry_media/../../secret.txt",
        f"/media/{secret}",  # an absolute path
        "/media//etc/passwd",
        "/media/escape",  # a symlink out of MEDIA_ROOT
        "/media/tapestry_media/outputs/",  # a directory
        "/media/tapestry_media/outputs/missing.mp4",
        "/media/a%00b",
    ):
        response = get(client, path, Range="bytes=0-99")
        assert response.status_code == 404, path


@pytest.mark.django_db(transaction=True)
def test_over_real_http_like_curl_r(live_server, monkeypatch, tmp_path: Path) -> None:
    """What ``curl -r 0-99`` sends, to a real server socket; and a raw ``..`` path."""
    serve_media_through_urls(monkeypatch)
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    conn.request("GET", "/media/tapestry_media/outputs/clip.mp4", headers={"Range": "bytes=0-99"})
    response = conn.getresponse()
    assert (response.status, response.getheader("Content-Range")) == (206, "bytes 0-99/10240")
    assert response.read() == DATA[:100]
    (tmp_path / "secret.txt").write_bytes(b"not media")  # beside MEDIA_ROOT (tmp_path / "media")
    conn.request("GET", "/media/../secret.txt")  # sent as is: http.client does not normalise
    response = conn.getresponse()
    assert (response.status, response.read()) != (200, b"not media")
    assert response.status == 404
    conn.close()


def test_favicon(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
