"""Deprecated: the local backend is :class:`tapestry_media.local.backend.LocalBackend` now
(``TAPESTRY_MEDIA["BACKEND"] = "local"`` names it). This module stays for one release so that
a setting holding ``"tapestry_media.backends.local.LocalBackend"`` still loads it."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        warnings.warn(
            "tapestry_media.backends.local.LocalBackend moved to "
            "tapestry_media.local.backend.LocalBackend; set TAPESTRY_MEDIA['BACKEND'] = 'local'",
            DeprecationWarning,
            stacklevel=2,
        )
        # Lazy: the backends package is core and never imports the local engine; only the
        # old dotted path comes this way (an `ignore_imports` entry in .importlinter).
        from ..local.backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
