"""Checks on an upload before it becomes a Submission, shared by the API and host forms: the
limits of ``tapestry_media.uploads`` plus a pipeline for the file's media kind."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from ..conf import get_settings
from ..upload_limits import validate_upload


def allowed_extensions() -> list[str]:
    return sorted({ext for exts in get_settings().ALLOWED_EXTENSIONS.values() for ext in exts})


def check_upload(upload: Any) -> str:
    """Raise ``ValidationError`` with the reason, or return the media kind.

    The size is known only once the body has been received: a front server's body limit
    (``client_max_body_size``…) should stop larger uploads before they reach Django.
    """
    kind = validate_upload(upload)
    if not get_settings().PIPELINE.get(kind):
        raise ValidationError(
            f"{kind.capitalize()} files are accepted but no processing is configured for them "
            f"(TAPESTRY_MEDIA['PIPELINE'][{kind!r}] is empty).",
            code="no_pipeline",
        )
    return kind
