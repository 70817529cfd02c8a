"""Serve the example site (example_project/example) from the tests' settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.test.testcases import _MediaFilesHandler

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example_project"
#: Screenshots and traces the browser tests leave for a person to look at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def use_example_site(settings: Any) -> None:
    """Install the ``example`` app and its URLs (plus media serving) on ``settings``."""
    if str(EXAMPLE_PROJECT) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_PROJECT))
    if "example" not in settings.INSTALLED_APPS:
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "example"]
    settings.ROOT_URLCONF = "tests.browser.urls"
    settings.LOGIN_URL = "/accounts/login/"
    settings.LOGIN_REDIRECT_URL = "/"
    settings.LOGOUT_REDIRECT_URL = "/"


def serve_media_through_urls(monkeypatch: Any) -> None:
    """Django's live server answers MEDIA_URL itself (``static.serve``: no Range); step aside
    so media reaches the example's own view, as it does under ``runserver``."""
    monkeypatch.setattr(_MediaFilesHandler, "_should_handle", lambda self, path: False)


#: The superuser the admin browser tests create.
ROOT_PASSWORD = "pw-root"


def admin_page(browser: Any, base_url: str, next_path: str) -> Any:
    """A 1280 px page signed in to the admin as ``root`` (a superuser the test made), at
    ``next_path``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", "root")
    page.fill("#id_password", ROOT_PASSWORD)
    page.click("input[type=submit]")
    return page
