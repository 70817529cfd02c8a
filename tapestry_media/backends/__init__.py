"""Task backends. ``get_backend()`` returns the configured one (cached until settings change)."""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from ..conf import BUILTIN_BACKENDS, SETTING_NAME, get_settings
from .base import (
    AuthenticationError,
    BackendError,
    BaseBackend,
    NotSupported,
    PermanentBackendError,
    TaskSpec,
    TransientBackendError,
    WebhookKey,
)

_lock = threading.Lock()
_instances: dict[str, BaseBackend] = {}


def get_backend(name: str | None = None) -> BaseBackend:
    """The backend called ``name`` ("ittybit", "local", "dummy", a dotted path), or the
    configured one. One instance per name and thread-safe to share (pooled sessions)."""
    config = get_settings()
    path = BUILTIN_BACKENDS.get(name, name) if name else config.backend_path
    with _lock:
        backend = _instances.get(path)
        if backend is None:
            backend = import_string(path)(config)
            _instances[path] = backend
        return backend


@sensitive_variables("config", "keys")
def webhook_keys() -> list[WebhookKey]:
    """Every key a webhook may be signed with, as (secret, scope): the configured
    ``WEBHOOK_SECRETS`` first (any task), then each backend's own scoped keys."""
    config = get_settings()
    keys = [WebhookKey(secret) for secret in config.WEBHOOK_SECRETS]
    for path in dict.fromkeys((*BUILTIN_BACKENDS.values(), config.backend_path)):
        keys.extend(import_string(path).webhook_keys(config))
    return keys


def reset() -> None:
    with _lock:
        for backend in _instances.values():
            backend.close()
        _instances.clear()


@receiver(setting_changed)
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """New settings, new backend instances (``override_settings`` in tests)."""
    if setting == SETTING_NAME:
        reset()


__all__ = [
    "AuthenticationError",
    "BackendError",
    "BaseBackend",
    "NotSupported",
    "PermanentBackendError",
    "TaskSpec",
    "TransientBackendError",
    "WebhookKey",
    "get_backend",
    "reset",
    "webhook_keys",
]
