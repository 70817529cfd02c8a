from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from tapestry_media.models import Submission
from tapestry_media.upload_limits import validate_upload


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.mp4", "video"), ("b.MOV", "video"), ("c.png", "image"), ("d.mp3", "audio")],
)
def test_kinds_by_extension(name, kind) -> None:
    assert validate_upload(SimpleUploadedFile(name, b"x")) == kind


def test_too_large_names_the_limit(settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_UPLOAD_BYTES": 10}
    with pytest.raises(ValidationError, match="the limit is 10"):
        validate_upload(SimpleUploadedFile("a.mp4", b"x" * 11))
    assert validate_upload(SimpleUploadedFile("a.mp4", b"x" * 10)) == "video"


def test_unknown_type_lists_what_is_accepted() -> None:
    with pytest.raises(ValidationError, match=r"'exe' are not accepted; use one of: .*mp4"):
        validate_upload(SimpleUploadedFile("a.exe", b"x"))


def test_empty_file() -> None:
    with pytest.raises(ValidationError, match="empty"):
        validate_upload(SimpleUploadedFile("a.mp4", b""))


@pytest.mark.django_db
def test_model_full_clean_reports_on_the_file_field() -> None:
    sub = Submission(file=SimpleUploadedFile("a.exe", b"x"))
    with pytest.raises(ValidationError) as raised:
        sub.full_clean()
    assert "file" in raised.value.message_dict
    Submission(file=SimpleUploadedFile("a.mp4", b"x")).full_clean()  # positive control


@pytest.mark.django_db
def test_full_clean_without_a_file_reports_the_required_field_not_a_crash() -> None:
    with pytest.raises(ValidationError) as raised:
        Submission(title="no file").full_clean()
    assert "file" in raised.value.message_dict
