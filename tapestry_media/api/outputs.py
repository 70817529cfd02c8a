"""Where a task's output can be fetched from, for players, previews and API clients.

A file this app stored (the local engine's output, ``output["storage_name"]``) gets its URL
from the storage when it is read, never from the row: a private storage (S3 with
``querystring_auth``, GCS, Azure…) signs URLs that expire, so one frozen at processing time
dies within the hour. A cloud result has no storage name; its reported URL is used as stored.
No network: storages sign URLs locally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage

from ..conf import get_settings
from ..links import safe_link

if TYPE_CHECKING:
    from ..models import Task

#: Backends that store their outputs in the default storage. A ``storage_name`` in any other
#: task's output came from a remote result and is not trusted: it could name another file.
STORING_BACKENDS = frozenset({"local"})


def stored_names(backend: str, output: Any) -> list[str]:
    """The storage names in ``output`` (an object or a list of them) of a task run by
    ``backend``, if that backend stores its outputs; else ``[]``."""
    if backend not in STORING_BACKENDS:
        return []
    items = output if isinstance(output, list) else [output]
    return [
        name
        for item in items
        if isinstance(item, dict)
        for name in [item.get("storage_name")]
        if isinstance(name, str) and name
    ]


def storage_url(name: str) -> str:
    """The storage's URL for ``name`` now (signed afresh by a private storage), or "" when the
    storage refuses the name or gives a URL that :func:`~tapestry_media.links.safe_link`
    refuses."""
    try:
        return safe_link(default_storage.url(name))
    except (SuspiciousOperation, ValueError):  # a name outside the storage, written by hand
        return ""


#: Per task instance: signing costs about a millisecond on S3, and one response asks for the
#: same file's URL more than once (``output_url`` and ``output.url``; ``tasks`` and ``outputs``).
_SIGNED = "_tapestry_storage_urls"


def _storage_url_for(task: Task, name: str) -> str:
    urls: dict[str, str] = task.__dict__.setdefault(_SIGNED, {})
    if name not in urls:
        urls[name] = storage_url(name)
    return urls[name]


def output_src(task: Task) -> str:
    """The URL of ``task``'s (first) output: the storage's URL of a file this app stored,
    else the reported ``output_url``, else the output's ``url``, else "". Only a URL that
    :func:`~tapestry_media.links.is_safe_link` accepts is returned, whatever the row holds."""
    names = stored_names(task.backend, task.output)
    url = _storage_url_for(task, names[0]) if names else ""
    if url:
        return url
    if safe_link(task.output_url):
        return task.output_url
    output: Any = task.output
    if isinstance(output, list) and output:
        output = output[0]
    return safe_link(output.get("url")) if isinstance(output, dict) else ""


def with_read_time_urls(task: Task, absolute: Callable[[str], str] = str) -> Any:
    """``task.output`` with each stored file's ``url`` replaced by the storage's URL now
    (passed through ``absolute``): a row written before read-time URLs may still hold a
    signed one that has expired."""
    output: Any = task.output
    if not stored_names(task.backend, output):
        return output

    def refresh(item: Any) -> Any:
        name = item.get("storage_name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            return item
        fresh = {k: v for k, v in item.items() if k != "url"}
        url = _storage_url_for(task, name)
        return {**fresh, "url": absolute(url)} if url else fresh

    return [refresh(item) for item in output] if isinstance(output, list) else refresh(output)


def public_src(task: Task) -> str:
    """:func:`output_src` as an absolute URL where there is no request to build one from (the
    CLI): a site path is joined to ``PUBLIC_BASE_URL`` when that is set."""
    src = output_src(task)
    base = get_settings().PUBLIC_BASE_URL
    if src and base and not urlsplit(src).scheme:
        return urljoin(base.rstrip("/") + "/", src.lstrip("/"))
    return src
