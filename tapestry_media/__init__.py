"""tapestry_media: submit uploads to a media task API with metadata and reconcile the results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .models import Task


def submit(**kwargs: Any) -> Task:
    """Create a Task and submit it after commit. See :func:`tapestry_media.pipeline.submit`."""
    # Here, not at the top: this package is imported (INSTALLED_APPS) before models can be.
    from .pipeline import submit as _submit

    return _submit(**kwargs)


__all__ = ["__version__", "submit"]
