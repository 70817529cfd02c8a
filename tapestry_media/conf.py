"""Settings: one ``TAPESTRY_MEDIA`` dict, read into a typed, validated object.

``get_settings()`` is cached and reset on ``setting_changed``, so ``override_settings`` works.
Validation returns messages that name the setting; the system checks report them, and
``get_settings()`` raises ``ImproperlyConfigured`` with the first one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .metadata_limits import MetadataError, validate_metadata

SETTING_NAME = "TAPESTRY_MEDIA"
BUILTIN_BACKENDS = {
    "ittybit": "tapestry_media.backends.ittybit.IttybitBackend",
    "local": "tapestry_media.local.backend.LocalBackend",
    "dummy": "tapestry_media.backends.dummy.DummyBackend",
}
#: Dotted paths of built-in backends before they moved, read as the built-in (one release).
MOVED_BACKENDS = {"tapestry_media.backends.local.LocalBackend": "local"}
MEDIA_KINDS = ("video", "image", "audio")
API_MODES = ("tasks", "jobs")
#: What the "jobs" mode sends as ``Accept-Version`` with API_VERSION "auto". Ittybit documents
#: two values: "2025-08-20" (whose ``POST /tasks`` takes ``url``/``file_id``, not the seed's
#: body, and which predates ``/jobs``) and "latest", the version its jobs docs describe.
JOBS_API_VERSION = "latest"
#: Settings whose values never appear in a repr.
SECRET_FIELDS = frozenset({"API_KEY", "WEBHOOK_SECRETS"})
_STEP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


#: The default pipeline bounds the long side of every picture at this many pixels.
DEFAULT_LONG_SIDE = 1280


def _long_side_box() -> dict[str, Any]:
    """A square box with ``fit: contain``: the long side (landscape, portrait, or upright once
    a display rotation is applied) is at most DEFAULT_LONG_SIDE and nothing is upscaled. The
    Ittybit API takes the same width/height/fit options (its contract, section 2)."""
    return {"width": DEFAULT_LONG_SIDE, "height": DEFAULT_LONG_SIDE, "fit": "contain"}


def _default_pipeline() -> dict[str, list[dict[str, Any]]]:
    return {
        "video": [
            {"name": "video", "kind": "video", "options": {**_long_side_box(), "format": "mp4"}},
            {
                "name": "poster",
                "kind": "image",
                "options": {**_long_side_box(), "format": "jpg", "start": 1},
            },
        ],
        "image": [
            {"name": "image", "kind": "image", "options": {**_long_side_box(), "format": "webp"}},
        ],
        "audio": [
            {"name": "audio", "kind": "audio", "options": {"format": "mp3"}},
        ],
    }


def _default_extensions() -> dict[str, list[str]]:
    return {
        "video": ["mp4", "mov", "m4v", "webm", "mkv", "avi"],
        "image": ["jpg", "jpeg", "png", "webp", "gif", "heic", "avif"],
        "audio": ["mp3", "m4a", "aac", "wav", "ogg", "opus", "flac"],
    }


@dataclass(frozen=True)
class Settings:
    """Every key of ``settings.TAPESTRY_MEDIA`` with its default. Documented in the README."""

    #: "auto" (ittybit when API_KEY is set, else local), "ittybit", "local", "dummy" or a
    #: dotted path to a backend class.
    BACKEND: str = "auto"
    API_KEY: str = ""
    API_BASE_URL: str = "https://api.ittybit.com"
    #: Which Ittybit API shape to speak: "tasks" (the seed's ``POST /tasks``) or "jobs"
    #: (``POST /jobs``, webhook endpoints, the Events resource). See the README.
    API_MODE: str = "tasks"
    #: ``Accept-Version``: "auto" sends the version whose body the mode speaks (none for
    #: "tasks", ``JOBS_API_VERSION`` for "jobs"); "" sends none; anything else is sent as is.
    API_VERSION: str = "auto"
    #: Create/get path in the "tasks" mode ("jobs" always uses ``/jobs``).
    TASKS_PATH: str = "/tasks"
    #: Sent as ``webhook_url`` on create when not empty (newer accounts register endpoints).
    WEBHOOK_URL: str = ""
    WEBHOOK_SECRETS: tuple[str, ...] = ()
    WEBHOOK_MAX_BODY_BYTES: int = 1024 * 1024
    #: Standard Webhooks timestamp tolerance, seconds.
    WEBHOOK_TOLERANCE: int = 300
    #: How the API fetches an upload: absolute URL prefix for storage URLs ...
    PUBLIC_BASE_URL: str = ""
    #: ... or a callable (or dotted path) ``(storage_name, task) -> url``, e.g. an S3 presigner
    #: whose expiry exceeds queue delay plus retries.
    INPUT_URL_FUNCTION: str | Callable[..., str] | None = None
    PIPELINE: Mapping[str, list[dict[str, Any]]] = field(default_factory=_default_pipeline)
    DEFAULT_METADATA: Mapping[str, str] = field(default_factory=dict)
    #: The metadata key carrying the Task's uuid (the correlation key). Reserved.
    CORRELATION_KEY: str = "tapestry_task"
    MAX_UPLOAD_BYTES: int = 2 * 1024**3
    ALLOWED_EXTENSIONS: Mapping[str, list[str]] = field(default_factory=_default_extensions)
    #: Offer ``POST submissions/uploads/`` (a presigned POST) when the upload storage can
    #: presign (django-storages' S3 storage); False: multipart uploads only.
    DIRECT_UPLOADS: bool = True
    #: Seconds a presigned upload target stays usable.
    DIRECT_UPLOAD_EXPIRE: int = 600
    CONNECT_TIMEOUT: float = 5.0
    READ_TIMEOUT: float = 30.0
    #: Quick retries inside one HTTP call (connection errors, 408/409/429/5xx).
    HTTP_RETRIES: int = 2
    HTTP_BACKOFF_FACTOR: float = 0.5
    HTTP_BACKOFF_MAX: float = 30.0
    #: Submit-job retries after the quick ones are spent, with exponential backoff.
    SUBMIT_MAX_RETRIES: int = 8
    SUBMIT_BACKOFF_BASE: float = 30.0
    SUBMIT_BACKOFF_MAX: float = 3600.0
    #: ``django.tasks`` backend alias and queue for this app's jobs.
    TASK_BACKEND: str = "default"
    QUEUE_NAME: str = "default"
    #: Non-terminal tasks untouched for this long are picked up by ``resync``.
    STALE_AFTER: timedelta = timedelta(minutes=15)
    #: The longest ``run_after`` delay handed to the task backend (seconds or a timedelta; 0:
    #: never defer). A retry due later waits in ``created`` for ``resync``. ``None``: the task
    #: backend's default (``defer.DEFAULT_MAX_DEFER``: 25 minutes on django-tasks-celery).
    MAX_DEFER: timedelta | None = None
    #: Local engine.
    FFMPEG_BINARY: str = ""
    LOCAL_TIMEOUT: float = 3600.0
    LOCAL_LEASE_SECONDS: int = 300
    LOCAL_OUTPUT_PREFIX: str = "tapestry_media/outputs"
    LOCAL_ALLOWED_SCHEMES: tuple[str, ...] = ("https", "http")
    LOCAL_ALLOW_PRIVATE_ADDRESSES: bool = False
    LOCAL_MAX_INPUT_BYTES: int = 2 * 1024**3
    LOCAL_FETCH_TIMEOUT: float = 30.0

    def __repr__(self) -> str:
        # Settings objects are frame locals in tracebacks (Django's technical 500 page).
        shown = (
            f"{f.name}={'***' if f.name in SECRET_FIELDS else repr(getattr(self, f.name))}"
            for f in fields(self)
        )
        return f"Settings({', '.join(shown)})"

    @property
    def backend_path(self) -> str:
        name = MOVED_BACKENDS.get(self.BACKEND, self.BACKEND)
        if name == "auto":
            name = "ittybit" if self.API_KEY else "local"
        return BUILTIN_BACKENDS.get(name, name)

    @property
    def accept_version(self) -> str:
        """The ``Accept-Version`` to send ("" for none)."""
        if self.API_VERSION != "auto":
            return self.API_VERSION
        return JOBS_API_VERSION if self.API_MODE == "jobs" else ""

    @property
    def backend_name(self) -> str:
        path = self.backend_path
        for name, builtin in BUILTIN_BACKENDS.items():
            if builtin == path:
                return name
        return path


_FIELDS = {f.name: f for f in fields(Settings)}


def validate(raw: object) -> list[str]:
    """Every problem in a raw ``TAPESTRY_MEDIA`` value, each naming the setting."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [f"{SETTING_NAME} must be a dict, not {type(raw).__name__}."]
    errors = [
        f"{SETTING_NAME}[{key!r}] is not a setting of tapestry_media; "
        f"known settings: {', '.join(sorted(_FIELDS))}."
        for key in raw
        if key not in _FIELDS
    ]
    known = {k: v for k, v in raw.items() if k in _FIELDS}
    for key, check in _CHECKS.items():
        if key in known:
            problem = check(known[key])
            if problem:
                errors.append(f"{SETTING_NAME}[{key!r}] {problem}")
    return errors


def load(raw: Mapping[str, Any] | None) -> Settings:
    errors = validate(raw)
    if errors:
        raise ImproperlyConfigured(errors[0])
    values = dict(raw or {})
    for key in ("WEBHOOK_SECRETS", "LOCAL_ALLOWED_SCHEMES"):
        if key in values:
            values[key] = tuple(values[key])
    if values.get("BACKEND") in MOVED_BACKENDS:
        warnings.warn(
            f"{SETTING_NAME}['BACKEND'] = {values['BACKEND']!r} is deprecated: use "
            f"{MOVED_BACKENDS[values['BACKEND']]!r}",
            DeprecationWarning,
            stacklevel=2,
        )
    for key in ("STALE_AFTER", "MAX_DEFER"):
        if isinstance(values.get(key), int | float):
            values[key] = timedelta(seconds=values[key])
    return Settings(**values)


_cache: Settings | None = None


def get_settings() -> Settings:
    global _cache
    if _cache is None:
        _cache = load(getattr(django_settings, SETTING_NAME, None))
    return _cache


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    global _cache
    if setting == SETTING_NAME:
        _cache = None


# --- value checks: each returns a message fragment, or "" -----------------------------------


def _is_str(value: object) -> str:
    return "" if isinstance(value, str) else f"must be a string, not {type(value).__name__}."


def _is_url(value: object) -> str:
    if not isinstance(value, str):
        return _is_str(value)
    if value and not re.match(r"^https?://[^\s/]+", value):
        return f"must be an absolute http(s) URL, not {value!r}."
    return ""


def _is_positive(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f"must be a positive number, not {value!r}."
    return ""


def _is_seconds(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 604800:
        return f"must be a whole number of seconds from 1 to 604800 (7 days), not {value!r}."
    return ""


def _is_count(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"must be a whole number >= 0, not {value!r}."
    return ""


def _is_backend(value: object) -> str:
    if not isinstance(value, str) or not value:
        return "must be 'auto', 'ittybit', 'local', 'dummy' or a dotted path to a backend class."
    if value != "auto" and value not in BUILTIN_BACKENDS and "." not in value:
        return (
            f"is {value!r}: use 'auto', 'ittybit', 'local', 'dummy' or a dotted path to a "
            "backend class."
        )
    return ""


def _is_secret_list(value: object) -> str:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return "must be a list of secrets (a list lets you rotate them)."
    if not all(isinstance(s, str) and s for s in value):
        return "must hold non-empty strings only."
    return ""


def _is_str_mapping(value: object) -> str:
    if not isinstance(value, Mapping):
        return "must be a dict of string keys to string values."
    try:
        validate_metadata(dict(value))
    except MetadataError as exc:
        return str(exc)
    return ""


def _is_pipeline(value: object) -> str:
    if not isinstance(value, Mapping):
        return "must be a dict of media kind ('video', 'image', 'audio') to a list of steps."
    for media_kind, steps in value.items():
        if media_kind not in MEDIA_KINDS:
            return f"has an unknown media kind {media_kind!r}; use one of {MEDIA_KINDS}."
        if not isinstance(steps, list):
            return f"[{media_kind!r}] must be a list of steps."
        seen: set[str] = set()
        for index, step in enumerate(steps):
            where = f"[{media_kind!r}][{index}]"
            if not isinstance(step, Mapping):
                return f"{where} must be a dict with 'name', 'kind' and optional 'options'."
            unknown = set(step) - {"name", "kind", "options", "metadata"}
            if unknown:
                return f"{where} has unknown keys {sorted(unknown)}."
            name = step.get("name")
            if not isinstance(name, str) or not _STEP_NAME.match(name):
                return f"{where}['name'] must be a short lowercase slug, not {name!r}."
            if name in seen:
                return f"{where}['name'] {name!r} is used twice."
            seen.add(name)
            if not isinstance(step.get("kind"), str) or not step["kind"]:
                return f"{where}['kind'] must be a task kind such as 'video' or 'image'."
            if not isinstance(step.get("options", {}), Mapping):
                return f"{where}['options'] must be a dict."
            problem = _is_str_mapping(step.get("metadata", {}))
            if problem:
                return f"{where}['metadata'] {problem}"
    return ""


def _is_extensions(value: object) -> str:
    if not isinstance(value, Mapping) or not all(
        k in MEDIA_KINDS and isinstance(v, list | tuple) for k, v in value.items()
    ):
        return f"must map media kinds {MEDIA_KINDS} to lists of file extensions."
    return ""


def _is_callable_or_path(value: object) -> str:
    if value is None or callable(value) or (isinstance(value, str) and "." in value):
        return ""
    return "must be a callable or a dotted path to one."


def _is_duration(value: object) -> str:
    if isinstance(value, timedelta) and value.total_seconds() > 0:
        return ""
    return _is_positive(value)


def _is_optional_delay(value: object) -> str:
    if value is None or (isinstance(value, timedelta) and value.total_seconds() >= 0):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return f"must be None, a number of seconds >= 0 or a timedelta, not {value!r}."
    return ""


def _is_correlation_key(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,32}", value):
        return "must be 1 to 32 characters of [A-Za-z0-9_]."
    if "__" in value:
        return "must not contain '__' (Django's lookup separator)."
    return ""


def _is_schemes(value: object) -> str:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return "must be a list of URL schemes such as ['https']."
    return ""


def _is_bool(value: object) -> str:
    return "" if isinstance(value, bool) else "must be True or False."


_CHECKS: dict[str, Callable[[object], str]] = {
    "BACKEND": _is_backend,
    "API_KEY": _is_str,
    "API_BASE_URL": _is_url,
    "API_MODE": lambda v: "" if v in API_MODES else f"must be one of {API_MODES}, not {v!r}.",
    "API_VERSION": _is_str,
    "TASKS_PATH": lambda v: (
        "" if isinstance(v, str) and v.startswith("/") else "must start with '/'."
    ),
    "WEBHOOK_URL": _is_url,
    "WEBHOOK_SECRETS": _is_secret_list,
    "WEBHOOK_MAX_BODY_BYTES": _is_positive,
    "WEBHOOK_TOLERANCE": _is_positive,
    "PUBLIC_BASE_URL": _is_url,
    "INPUT_URL_FUNCTION": _is_callable_or_path,
    "PIPELINE": _is_pipeline,
    "DEFAULT_METADATA": _is_str_mapping,
    "CORRELATION_KEY": _is_correlation_key,
    "MAX_UPLOAD_BYTES": _is_positive,
    "ALLOWED_EXTENSIONS": _is_extensions,
    "DIRECT_UPLOADS": _is_bool,
    "DIRECT_UPLOAD_EXPIRE": _is_seconds,
    "CONNECT_TIMEOUT": _is_positive,
    "READ_TIMEOUT": _is_positive,
    "HTTP_RETRIES": _is_count,
    "HTTP_BACKOFF_FACTOR": _is_positive,
    "HTTP_BACKOFF_MAX": _is_positive,
    "SUBMIT_MAX_RETRIES": _is_count,
    "SUBMIT_BACKOFF_BASE": _is_positive,
    "SUBMIT_BACKOFF_MAX": _is_positive,
    "TASK_BACKEND": _is_str,
    "QUEUE_NAME": _is_str,
    "STALE_AFTER": _is_duration,
    "MAX_DEFER": _is_optional_delay,
    "FFMPEG_BINARY": _is_str,
    "LOCAL_TIMEOUT": _is_positive,
    "LOCAL_LEASE_SECONDS": _is_positive,
    "LOCAL_OUTPUT_PREFIX": _is_str,
    "LOCAL_ALLOWED_SCHEMES": _is_schemes,
    "LOCAL_ALLOW_PRIVATE_ADDRESSES": _is_bool,
    "LOCAL_MAX_INPUT_BYTES": _is_positive,
    "LOCAL_FETCH_TIMEOUT": _is_positive,
}
assert set(_CHECKS) == set(_FIELDS), set(_FIELDS) ^ set(_CHECKS)
