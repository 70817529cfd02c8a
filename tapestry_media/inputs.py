"""How the API fetches a task's input: a URL as is, a storage name made public."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from urllib.parse import urljoin, urlsplit

from django.core.files.storage import default_storage
from django.utils.module_loading import import_string

from .backends.base import BaseBackend, PermanentBackendError
from .conf import get_settings

if TYPE_CHECKING:
    from .models import Task


def is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


def resolve_input(task: Task, backend: BaseBackend) -> str:
    """The ``input`` to send for ``task``. Storage names go as they are to a backend that reads
    storage (the local engine); cloud backends get a public URL."""
    if is_url(task.input) or backend.accepts_storage_input:
        return task.input
    return public_url(task.input, task)


def public_url(storage_name: str, task: Task | None = None) -> str:
    config = get_settings()
    if config.INPUT_URL_FUNCTION is not None:
        func = config.INPUT_URL_FUNCTION
        if isinstance(func, str):
            func = cast(Callable[..., str], import_string(func))
        return func(storage_name, task)
    url = default_storage.url(storage_name)
    if is_url(url):
        return url
    if not config.PUBLIC_BASE_URL:
        raise PermanentBackendError(
            f"cannot give the API a URL for {storage_name!r}: the storage URL {url!r} is not "
            "absolute. Set TAPESTRY_MEDIA['PUBLIC_BASE_URL'] (e.g. 'https://tapestry-app.com') "
            "or TAPESTRY_MEDIA['INPUT_URL_FUNCTION'].",
            kind="input_not_public",
        )
    return urljoin(config.PUBLIC_BASE_URL.rstrip("/") + "/", url.lstrip("/"))
