"""``TAPESTRY_MEDIA`` from 12-factor environment variables, read through django-environ.

Every setting ``KEY`` is read from ``TAPESTRY_MEDIA_KEY`` (the prefix is a parameter). With
django-environ's ``FileAwareEnv`` (the default) ``TAPESTRY_MEDIA_KEY_FILE=/run/secrets/x`` reads
the value from that file, as Docker and Kubernetes secrets are mounted; ``environ.Env.read_env()``
loads a ``.env`` file first. Values are taken literally (no ``$VAR`` expansion), stripped of
surrounding whitespace; an empty variable counts as unset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields
from datetime import timedelta
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from .conf import SECRET_FIELDS, Settings

DEFAULT_PREFIX = "TAPESTRY_MEDIA_"
_FILE_SUFFIX = "_FILE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class EnvSettings(dict[str, Any]):
    """A plain ``TAPESTRY_MEDIA`` dict whose repr hides the secrets (settings dumps, tracebacks)."""

    def __repr__(self) -> str:
        shown = (f"{k!r}: {'***' if k in SECRET_FIELDS else repr(v)}" for k, v in self.items())
        return "{" + ", ".join(shown) + "}"

    __str__ = __repr__


def settings_from_env(
    env: environ.Env | None = None, *, prefix: str = DEFAULT_PREFIX, **defaults: Any
) -> EnvSettings:
    """Build ``TAPESTRY_MEDIA`` from ``{prefix}{KEY}`` variables over ``defaults``.

    ``env`` is your settings' ``environ.Env`` (default: a new ``environ.FileAwareEnv()``).
    Strings are taken as they are, lists (``WEBHOOK_SECRETS``, ``LOCAL_ALLOWED_SCHEMES``) are
    comma-separated, numbers and booleans (``true``/``false``, ``1``/``0``, ``yes``/``no``) are
    parsed strictly, ``STALE_AFTER`` is seconds or ``30s``/``10m``/``2h``/``1d``, and dicts
    (``PIPELINE``, ``DEFAULT_METADATA``, ``ALLOWED_EXTENSIONS``) are JSON objects. A value that
    does not parse, or a ``{prefix}`` variable that names no setting, raises
    ``ImproperlyConfigured`` naming the variable; a secret's value is never shown. Whether the
    values make sense together is left to the system checks (``manage.py check``).
    """
    source: Mapping[str, str] = (env or environ.FileAwareEnv()).ENVIRON
    known = {f.name: f for f in fields(Settings)}
    _refuse_unknown(source, prefix, known)
    values = EnvSettings(defaults)
    for name, spec in known.items():
        variable = f"{prefix}{name}"
        raw = _read(source, variable).strip()
        if not raw:
            continue
        try:
            values[name] = _parser(spec)(raw)
        except ValueError as exc:
            shown = variable if name in SECRET_FIELDS else f"{variable}={raw!r}"
            raise ImproperlyConfigured(
                f"The environment variable {shown} is not valid: {exc}"
            ) from None
    return values


def _read(source: Mapping[str, str], variable: str) -> str:
    try:
        return source.get(variable) or ""
    except OSError as exc:  # FileAwareEnv: the _FILE variable names a file it cannot read
        raise ImproperlyConfigured(
            f"The environment variable {variable}{_FILE_SUFFIX} names a file that cannot be "
            f"read ({exc.strerror})."
        ) from None


def _refuse_unknown(
    source: Mapping[str, str], prefix: str, known: Mapping[str, Field[Any]]
) -> None:
    for variable in source:
        if not variable.startswith(prefix):
            continue
        name = variable[len(prefix) :]
        if name.endswith(_FILE_SUFFIX) and name[: -len(_FILE_SUFFIX)] in known:
            continue
        if name not in known:
            raise ImproperlyConfigured(
                f"The environment variable {variable} names no tapestry_media setting "
                f"(known: {', '.join(prefix + k for k in sorted(known))}); "
                f"rename or unset it."
            )


def _default_of(spec: Field[Any]) -> Any:
    if spec.default is not MISSING:
        return spec.default
    assert spec.default_factory is not MISSING  # every Settings field has a default
    return spec.default_factory()


def _parser(spec: Field[Any]) -> Callable[[str], Any]:
    default = _default_of(spec)
    if isinstance(default, bool):
        return _boolean
    if isinstance(default, int):
        return _whole_number
    if isinstance(default, float):
        return _number
    if isinstance(default, timedelta):
        return _duration
    if isinstance(default, tuple):
        return _comma_list
    if isinstance(default, Mapping):
        return _json_object
    return str  # strings, and INPUT_URL_FUNCTION's dotted path


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError("expected true or false (also 1/0, yes/no, on/off).")


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number.") from None


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number (seconds may have a decimal point).") from None


def _duration(raw: str) -> timedelta:
    match = _DURATION.match(raw.lower())
    if not match:
        raise ValueError("expected seconds or a number with a unit: 30s, 10m, 2h, 1d.")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def _comma_list(raw: str) -> list[str]:
    items: list[str] = environ.Env.parse_value(raw, list)
    return [item.strip() for item in items if item.strip()]


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, not a JSON {type(value).__name__}.")
    return value
