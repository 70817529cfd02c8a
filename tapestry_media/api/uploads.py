"""Checks on an upload before it becomes a Submission: the API and host forms share them."""

from __future__ import annotations

import os

from django.core.exceptions import ValidationError

from ..conf import get_settings
from ..pipeline import detect_media_kind


def allowed_extensions() -> list[str]:
    return sorted({ext for exts in get_settings().ALLOWED_EXTENSIONS.values() for ext in exts})


def check_upload(name: str, size: int | None, content_type: str = "") -> str:
    """Raise ``ValidationError`` with the reason, or return the media kind.

    The size is known only once the body has been received: a front server's body limit
    (``client_max_body_size``…) should stop larger uploads before they reach Django.
    """
    config = get_settings()
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    allowed = allowed_extensions()
    if extension not in allowed:
        what = f"'.{extension}' files" if extension else "files without an extension"
        raise ValidationError(
            f"{what} are not accepted; upload one of: {', '.join(allowed)}.", code="file_type"
        )
    if size is not None and size > config.MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"the file is {human_size(size)}; the limit is {human_size(config.MAX_UPLOAD_BYTES)}.",
            code="file_too_large",
        )
    kind = detect_media_kind(name, content_type)
    if not config.PIPELINE.get(kind):
        raise ValidationError(
            f"{kind or 'these'} files are accepted but no processing is configured for them "
            f"(TAPESTRY_MEDIA['PIPELINE'][{kind!r}]).",
            code="no_pipeline",
        )
    return kind


def human_size(size: int) -> str:
    value, unit = float(size), "bytes"
    for larger in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
