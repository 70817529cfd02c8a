"""System checks. They read settings only, never the database."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any

from django.apps import apps
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
    errors += check_task_backend(config)
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


#: Where every check id is listed.
TASK_HINT = "Every check id is explained in tapestry_media's docs/api.md ('System checks')."
_IMMEDIATE = {
    "django.tasks.backends.immediate.ImmediateBackend",
    "django_tasks.backends.immediate.ImmediateBackend",
}
# Told apart by dotted path alone: the broker's own packages are never imported here.
_RQ_PACKAGES = ("django_tasks_rq", "django_tasks.backends.rq")
_CELERY_PACKAGES = ("django_tasks_celery", "django_tasks_fennel")


def _default_tasks() -> dict[str, Any]:
    """What an unset ``TASKS`` means: Django's default, the ImmediateBackend."""
    package = "django.tasks" if find_spec("django.tasks") else "django_tasks"
    return {"default": {"BACKEND": f"{package}.backends.immediate.ImmediateBackend"}}


def check_task_backend(config: conf.Settings) -> list[checks.CheckMessage]:
    """Everything about the ``django.tasks`` backend this app's jobs go to, from settings and the
    backend class's capability flags only: no database, no broker, no network."""
    tasks = getattr(settings, "TASKS", None) or _default_tasks()
    alias = config.TASK_BACKEND
    if alias not in tasks:
        return [
            checks.Error(
                f"TAPESTRY_MEDIA['TASK_BACKEND'] is {alias!r}, which is not a key "
                f"of settings.TASKS ({', '.join(tasks)}).",
                id="tapestry_media.E005",
            )
        ]
    where = f"settings.TASKS[{alias!r}]"
    entry = tasks[alias]
    path = str(entry.get("BACKEND") or "") if isinstance(entry, Mapping) else ""
    messages = _broker_notes(where, path)
    try:
        backend = import_string(path)
    except ImportError as exc:
        reason = f"cannot be imported ({exc})" if path else "names no BACKEND"
        return [
            checks.Error(
                f"{where}['BACKEND'] = {path!r} {reason}, so no job of this app can be queued "
                "and every upload stays 'created'.",
                hint="Install the package that provides it (django-tasks-db comes with "
                "pip install 'tapestry-media[worker]') or fix the dotted path.",
                id="tapestry_media.E007",
            ),
            *messages,
        ]
    missing = [app for app in _apps_needed(path) if not apps.is_installed(app)]
    if missing:
        messages.append(
            checks.Error(
                f"{where} uses {path}, whose app is not installed: add "
                f"{', '.join(repr(app) for app in missing)} to INSTALLED_APPS (then migrate).",
                id="tapestry_media.E008",
            )
        )
    if _is_immediate(backend):
        if not settings.DEBUG:
            messages.append(
                checks.Warning(
                    f"{where} is the ImmediateBackend (also what an unset TASKS means): every "
                    "job of this app runs inside the request that queues it, so an upload "
                    "waits for the API call or the whole FFmpeg encode, and a job's exception "
                    "is swallowed.",
                    hint="Use a backend with a worker process, e.g. django_tasks_db."
                    "DatabaseBackend and `python manage.py db_worker` "
                    "(pip install 'tapestry-media[worker]').",
                    id="tapestry_media.W003",
                )
            )
        return messages
    if not getattr(backend, "supports_priority", False):
        messages.append(
            checks.Warning(
                f"{where} ({path}) has no job priorities: an upload's `priority` metadata "
                "(high/normal/low) is dropped and every job runs in the order it was queued.",
                hint="Use a backend that supports priorities (django_tasks_db.DatabaseBackend, "
                "or Celery on a queue with x-max-priority), or silence this check if "
                f"first-in-first-out is what you want. {TASK_HINT}",
                id="tapestry_media.W004",
            )
        )
    if not getattr(backend, "supports_defer", False):
        messages.append(
            checks.Warning(
                f"{where} ({path}) cannot defer a job (run_after): a submit that failed with a "
                "transient error is not retried after its backoff; the task waits in 'created' "
                "until `manage.py tapestry_media resync` picks it up.",
                hint="Use a backend that can defer (django_tasks_db.DatabaseBackend, RQ with its "
                f"scheduler), or run resync from cron every few minutes. {TASK_HINT}",
                id="tapestry_media.W005",
            )
        )
    return messages


def _broker_notes(where: str, path: str) -> list[checks.CheckMessage]:
    """What only the broker knows, so no check can see it: said once, as Info."""
    if path.startswith(_RQ_PACKAGES):
        return [
            checks.Info(
                f"{where} is RQ: start workers with `--job-class django_tasks_rq.Job` (without "
                "it every job fails inside RQ and this app logs nothing) and with the scheduler "
                "(`--with-scheduler`) so deferred retries run; RQ's default job timeout (180 s) "
                "stops a long local-engine encode.",
                hint=f"Silence with SILENCED_SYSTEM_CHECKS once done. {TASK_HINT}",
                id="tapestry_media.I001",
            )
        ]
    if path.startswith(_CELERY_PACKAGES):
        return [
            checks.Info(
                f"{where} is Celery: on RabbitMQ, job priorities only work on a queue declared "
                "with the `x-max-priority` argument (e.g. 10), and a retry deferred past the "
                "broker's `consumer_timeout` (30 minutes by default) is redelivered early.",
                hint=f"Silence with SILENCED_SYSTEM_CHECKS once done. {TASK_HINT}",
                id="tapestry_media.I002",
            )
        ]
    return []


def _is_immediate(backend: Any) -> bool:
    mro = getattr(backend, "__mro__", ())
    return any(f"{k.__module__}.{k.__qualname__}" in _IMMEDIATE for k in mro)


def _apps_needed(path: str) -> list[str]:
    """The Django apps a backend class needs installed: its own package when that package has
    models or an AppConfig, and the django-tasks backport on Django 5.2."""
    needed = [] if find_spec("django.tasks") else ["django_tasks"]
    parts = path.split(".")[:-1]
    if parts and parts[0] != "django":
        for end in range(1, len(parts) + 1):
            package = ".".join(parts[:end])
            if _has_submodule(package, "models") or _has_submodule(package, "apps"):
                if package not in needed:
                    needed.append(package)
                break
    return needed


def _has_submodule(package: str, name: str) -> bool:
    try:
        return find_spec(f"{package}.{name}") is not None
    except ImportError:  # ``package`` is a module, not a package
        return False
