"""System checks. They read settings only, never the database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from . import conf, signatures

HINT = "See the settings table in tapestry_media's README."


def register() -> None:
    checks.register(check_settings, "tapestry_media")


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, conf.SETTING_NAME, None)
    problems = conf.validate(raw)
    errors: list[checks.CheckMessage] = [
        checks.Error(p, hint=HINT, id="tapestry_media.E001") for p in problems
    ]
    if errors:
        return errors
    config = conf.load(raw)
    errors += _check_backend(config)
    errors += _check_secrets(config)
    errors += _check_task_backend(config)
    return errors


def _check_backend(config: conf.Settings) -> list[checks.CheckMessage]:
    path = config.backend_path
    try:
        import_string(path)
    except ImportError as exc:
        return [
            checks.Error(
                f"TAPESTRY_MEDIA['BACKEND'] names {path!r}, which cannot be imported: {exc}.",
                id="tapestry_media.E002",
            )
        ]
    errors: list[checks.CheckMessage] = []
    if config.backend_name == "ittybit":
        if not config.API_KEY:
            errors.append(
                checks.Error(
                    "The ittybit backend needs an API key: set TAPESTRY_MEDIA['API_KEY'] "
                    "(e.g. from the ITTYBIT_API_KEY environment variable).",
                    id="tapestry_media.E003",
                )
            )
        if not config.WEBHOOK_SECRETS:
            # A warning, not an error: results still arrive by polling (resync), and the
            # webhook endpoint refuses every delivery while no secret is set.
            errors.append(
                checks.Warning(
                    "The ittybit backend needs the webhook signing secret to accept results "
                    "by webhook: set TAPESTRY_MEDIA['WEBHOOK_SECRETS'] to a list holding it. "
                    "Until then every webhook is refused and only resync brings results.",
                    id="tapestry_media.W002",
                )
            )
        if not (config.PUBLIC_BASE_URL or config.INPUT_URL_FUNCTION):
            errors.append(
                checks.Warning(
                    "Uploads can only be sent to the API if their storage URLs are absolute. "
                    "Set TAPESTRY_MEDIA['PUBLIC_BASE_URL'] or ['INPUT_URL_FUNCTION'] unless "
                    "your storage (e.g. S3) gives absolute URLs.",
                    id="tapestry_media.W001",
                )
            )
    return errors


def _check_secrets(config: conf.Settings) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"TAPESTRY_MEDIA['WEBHOOK_SECRETS'][{index}] starts with "
            f"{signatures.STANDARD_SECRET_PREFIX!r} but is not base64 after it, so it can never "
            "verify a webhook: copy the secret again exactly as it was issued.",
            id="tapestry_media.E006",
        )
        for index in signatures.malformed_secrets(config.WEBHOOK_SECRETS)
    ]


def _check_task_backend(config: conf.Settings) -> list[checks.CheckMessage]:
    tasks = getattr(settings, "TASKS", None)
    if tasks is not None and config.TASK_BACKEND not in tasks:
        return [
            checks.Error(
                f"TAPESTRY_MEDIA['TASK_BACKEND'] is {config.TASK_BACKEND!r}, which is not a key "
                f"of settings.TASKS ({', '.join(tasks)}).",
                id="tapestry_media.E005",
            )
        ]
    return []
