"""Every run proves it ran the database and Django version it was asked for: what the CI leg
claims (EXPECT_DB_VENDOR, EXPECT_DJANGO), else what the developer's command asked for
(DATABASE_URL, DJANGO_SERIES), else the defaults (SQLite, the newest Django)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import django
import pytest
from django.db import connection

#: DATABASE_URL schemes (django-environ's spellings) and the Django vendor each one names.
VENDOR_BY_SCHEME = {
    "sqlite": "sqlite",
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "pgsql": "postgresql",
    "postgis": "postgresql",
    "mysql": "mysql",
    "mysql2": "mysql",
    "mysqlgis": "mysql",
}


def vendor_asked_for() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite"
    scheme = urlsplit(url).scheme
    assert scheme in VENDOR_BY_SCHEME, f"DATABASE_URL scheme {scheme!r} is not one tests run on"
    return VENDOR_BY_SCHEME[scheme]


@pytest.mark.django_db
def test_database_vendor_is_the_one_this_leg_claims() -> None:
    claimed = os.environ.get("EXPECT_DB_VENDOR")
    if os.environ.get("CI", "").lower() == "true":
        assert claimed, "CI legs must set EXPECT_DB_VENDOR"
    assert connection.vendor == vendor_asked_for()
    if claimed:
        assert connection.vendor == claimed
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_django_version_is_the_one_this_leg_claims() -> None:
    series = os.environ.get("EXPECT_DJANGO") or os.environ.get("DJANGO_SERIES")
    if series:
        assert django.get_version().startswith(series + "."), django.get_version()
    else:
        assert django.VERSION >= (6, 0), "the default run uses the newest Django"
