"""Each CI leg proves it ran the database, Django version and settings it claims."""

from __future__ import annotations

import importlib
import os

import django
import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_database_vendor_is_the_one_this_leg_claims() -> None:
    expected = os.environ.get("EXPECT_DB_VENDOR")
    if expected is None:
        assert os.environ.get("CI", "").lower() != "true", "CI legs must set EXPECT_DB_VENDOR"
        return
    assert connection.vendor == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_django_version_is_the_one_this_leg_claims() -> None:
    expected = os.environ.get("EXPECT_DJANGO")
    if expected:
        assert django.get_version().startswith(expected + "."), django.get_version()
    else:
        assert django.VERSION >= (6, 0), "the default leg runs the newest Django"


def test_settings_are_the_ones_this_leg_claims() -> None:
    """The host-setup legs (custom user model, database router) run their own settings."""
    expected = os.environ.get("EXPECT_SETTINGS", "tests.settings")
    assert os.environ["DJANGO_SETTINGS_MODULE"] == expected
    module = importlib.import_module(expected)
    assert getattr(module, "AUTH_USER_MODEL", "auth.User") == settings.AUTH_USER_MODEL
    assert getattr(module, "DATABASE_ROUTERS", []) == settings.DATABASE_ROUTERS
    assert list(settings.DATABASES) == list(module.DATABASES)
