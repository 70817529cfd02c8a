"""The models and the migrations agree: a release never ships a missing migration."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", "tapestry_media", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail(f"missing migration (exit {exc.code}):\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()
