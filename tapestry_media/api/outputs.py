"""Where a task's output can be fetched from, for players and previews. No network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.files.storage import default_storage

from ..links import safe_link

if TYPE_CHECKING:
    from ..models import Task


def output_src(task: Task) -> str:
    """The URL of ``task``'s output: the reported URL, else the storage URL of a file the local
    engine stored (``output["storage_name"]``), else "". Only a URL that
    :func:`~tapestry_media.links.is_safe_link` accepts is returned, whatever the row holds."""
    if safe_link(task.output_url):
        return task.output_url
    output: Any = task.output
    if isinstance(output, list) and output:
        output = output[0]
    if not isinstance(output, dict):
        return ""
    url = safe_link(output.get("url"))
    if url:
        return url
    name = output.get("storage_name")
    if isinstance(name, str) and name:
        return safe_link(default_storage.url(name))
    return ""
