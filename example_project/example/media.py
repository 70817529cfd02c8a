"""Serve MEDIA_ROOT with HTTP Range, so players can seek (and iOS Safari plays MP4 at all).

Django's ``static.serve`` always answers 200 with the whole file. This view answers one
``bytes=`` range with 206 and ``Content-Range``, an unsatisfiable one with 416, and anything it
cannot parse (or several ranges) with the whole file, as RFC 9110 allows. It serves only
regular files under MEDIA_ROOT, after resolving symlinks; anything else is a 404.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def media_file(path: str) -> Path:
    """The regular file ``path`` names under MEDIA_ROOT, or Http404."""
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        target = (root / path).resolve()
    except (OSError, ValueError) as exc:  # a NUL byte, a symlink loop
        raise Http404("No such file.") from exc
    if not target.is_relative_to(root) or not target.is_file():
        raise Http404("No such file.")
    return target


class Unsatisfiable(Exception):
    """The range starts past the end of the file (or is empty): answer 416."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``bytes=`` range; None to send the whole file (no header,
    or one we do not parse). Raises Unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-N: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:  # not a valid range: ignore it
        return None
    if start >= size:
        raise Unsatisfiable
    return start, end


def _read(handle: BinaryIO, remaining: int) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


@require_safe
def serve_media(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    target = media_file(path)
    size = target.stat().st_size
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    try:
        wanted = byte_range(request.headers.get("Range", ""), size)
    except Unsatisfiable:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        refused["Accept-Ranges"] = "bytes"
        return refused
    if wanted is None:
        whole = FileResponse(target.open("rb"), content_type=content_type)
        whole["Accept-Ranges"] = "bytes"
        return whole
    first, last = wanted
    handle = target.open("rb")
    handle.seek(first)
    part = StreamingHttpResponse(
        _read(handle, last - first + 1), status=206, content_type=content_type
    )
    part["Content-Range"] = f"bytes {first}-{last}/{size}"
    part["Content-Length"] = str(last - first + 1)
    part["Accept-Ranges"] = "bytes"
    return part
