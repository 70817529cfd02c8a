"""The one rule for a URL that is stored as a task's output or rendered as a ``href``/``src``.

A result comes from a remote service (or a forged webhook) and its URL lands in the admin, the
example site and API clients' pages: ``javascript:``, ``data:`` or ``vbscript:`` there is script
running with the viewer's session. Only ``http(s)://host…`` or a path on this site (a storage
URL such as ``/media/…``) passes. Browsers drop leading whitespace and control characters and
tabs or newlines anywhere in a URL (``" java\\tscript:"`` runs), and read ``\\`` as ``/``, so
a URL holding any of them is refused outright rather than normalised.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SAFE_SCHEMES = frozenset({"http", "https"})


def is_safe_link(value: object) -> bool:
    """``value`` is an ``http``/``https`` URL with a host, or a path without scheme or host."""
    if not isinstance(value, str) or not value or "\\" in value:
        return False
    # Whitespace and control characters anywhere: every whitespace character but the ASCII
    # space is also not printable (Unicode "Other" and "Separator"), so this refuses the
    # same characters as a per-character ``isprintable() and not isspace()``, in two C calls.
    if not value.isprintable() or " " in value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    if parts.scheme:
        return parts.scheme.lower() in SAFE_SCHEMES and bool(parts.hostname)
    # No scheme: a path on this site. "//host/…" would leave it, and a "scheme:" that
    # urlsplit did not take for one (":x", "1a:b") is refused as well.
    return not parts.netloc and not value.startswith("//") and ":" not in value.split("/")[0]


def safe_link(value: object) -> str:
    """``value`` if :func:`is_safe_link` accepts it, else ``""`` (render nothing)."""
    return value if isinstance(value, str) and is_safe_link(value) else ""


LINK_KEYS = ("url", "src")


def drop_unsafe_links(output: Any) -> tuple[Any, list[str]]:
    """``output`` (an object or a list of objects, as a result reports it) without the
    ``url``/``src`` values :func:`is_safe_link` refuses, and the values dropped."""
    if isinstance(output, list):
        kept: list[Any] = []
        dropped: list[str] = []
        for item in output:
            clean, gone = drop_unsafe_links(item)
            kept.append(clean)
            dropped.extend(gone)
        return kept, dropped
    if not isinstance(output, dict):
        return output, []
    unsafe = [
        k for k in LINK_KEYS if output.get(k) not in (None, "") and not is_safe_link(output[k])
    ]
    return {k: v for k, v in output.items() if k not in unsafe}, [str(output[k]) for k in unsafe]
