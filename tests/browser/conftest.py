"""Headless Debian Chromium through Playwright, and the example site on the live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from .site import ARTIFACTS, serve_media_through_urls, use_example_site

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        # Under CI=true tests/conftest.py turns this skip into a failure.
        pytest.skip(
            f"no Chromium at {CHROMIUM}: run scripts/ensure-browser.sh "
            "(apt-get install -y chromium) or set CHROMIUM=/path/to/chromium"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
        # While Playwright runs, this thread has an event loop, so Django keys its connections
        # by context: the test body got connections of its own. Close them here, in that
        # context, or PostgreSQL cannot drop the test database.
        connections.close_all()


@pytest.fixture
def site(settings, monkeypatch) -> None:
    use_example_site(settings)
    serve_media_through_urls(monkeypatch)
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "local",
        "PUBLIC_BASE_URL": "",  # outputs are served by this site under /media/
    }
    # Playwright's sync API keeps an event loop in this thread; the ORM calls made here
    # between page steps are ordinary synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
