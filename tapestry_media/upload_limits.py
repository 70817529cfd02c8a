"""Upload limits from settings: size and extension per media kind."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from .conf import get_settings


def validate_upload(upload: Any) -> str:
    """Check an uploaded file against ``MAX_UPLOAD_BYTES`` and ``ALLOWED_EXTENSIONS``; return
    its media kind ("video", "image" or "audio")."""
    config = get_settings()
    size = getattr(upload, "size", None)
    if size is not None and size > config.MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"The file is {filesizeformat(size)}; the limit is "
            f"{filesizeformat(config.MAX_UPLOAD_BYTES)}.",
            code="file_too_large",
        )
    if size == 0:
        raise ValidationError("The file is empty.", code="file_empty")
    name = getattr(upload, "name", "") or ""
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    for kind, extensions in config.ALLOWED_EXTENSIONS.items():
        if extension in extensions:
            return kind
    allowed = ", ".join(sorted({e for exts in config.ALLOWED_EXTENSIONS.values() for e in exts}))
    raise ValidationError(
        f"Files of type {extension or '(none)'!r} are not accepted; use one of: {allowed}.",
        code="file_type",
    )
