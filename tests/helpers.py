"""Plain helpers shared by the test modules. Fixtures live in tests/conftest.py; nothing is
imported from a conftest or from another test module."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from tapestry_media.models import Submission


def video_upload(
    name: str = "clip.mp4", data: bytes = b"\x00\x00\x00\x18ftypmp42"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="video/mp4")


def upload(uploader: Any = None, **fields: Any) -> Submission:
    """A saved upload (campaign ``summer-launch``, source ``ios`` unless given); its tasks'
    submit jobs are queued when the transaction commits."""
    fields.setdefault("campaign", "summer-launch")
    fields.setdefault("source", "ios")
    fields.setdefault("file", video_upload())
    return Submission.objects.create(uploader=uploader, **fields)
