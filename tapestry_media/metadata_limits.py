"""The task API's limits on metadata: at most 32 keys of ``[A-Za-z0-9_]{1,32}``, string values
of at most 2048 characters. No settings and no models: the settings check
(``DEFAULT_METADATA``), the models (``with_metadata``) and :mod:`tapestry_media.metadata` all
build on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

MAX_KEYS = 32
MAX_KEY_LENGTH = 32
MAX_VALUE_LENGTH = 2048
#: no ``__``: Django's lookup separator has no place in a key (``campaign__regex`` was once
#: read as a regex filter). The same pattern is published in the OpenAPI document.
_KEY = re.compile(r"^(?!.*__)[A-Za-z0-9_]{1,32}$")


class MetadataError(ValidationError):
    """Metadata that breaks the API's limits. The message names the key."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message, code="invalid_metadata")
        self.key = key

    def __str__(self) -> str:
        return str(self.messages[0])


KEY_PATTERN = _KEY.pattern


def is_valid_key(key: object) -> bool:
    """``[A-Za-z0-9_]{1,32}`` without ``__``."""
    return isinstance(key, str) and bool(_KEY.match(key))


def validate_metadata(metadata: Mapping[str, Any], *, max_keys: int = MAX_KEYS) -> dict[str, str]:
    """Check the contract's limits: ≤32 keys of ``[A-Za-z0-9_]{1,32}`` (no ``__``), string
    values ≤2048. ``max_keys`` is lower for a client's metadata (see ``client_key_limit``)."""
    if not isinstance(metadata, Mapping):
        raise MetadataError("metadata must be an object of string keys to string values.")
    if len(metadata) > max_keys:
        room = "" if max_keys == MAX_KEYS else f" ({MAX_KEYS} less the keys the server adds)"
        raise MetadataError(
            f"metadata has {len(metadata)} keys; at most {max_keys} are allowed{room}."
        )
    for key, value in metadata.items():
        if not is_valid_key(key):
            raise MetadataError(
                f"metadata key {key!r} is invalid: use 1 to {MAX_KEY_LENGTH} characters of "
                "letters, digits and '_', without '__'.",
                key=str(key),
            )
        if not isinstance(value, str):
            raise MetadataError(
                f"metadata[{key!r}] must be a string, not {type(value).__name__} "
                f"({value!r}); send it as text, e.g. {str(value)!r}.",
                key=key,
            )
        if "\x00" in value:  # PostgreSQL's jsonb cannot store it
            raise MetadataError(f"metadata[{key!r}] contains a NUL character.", key=key)
        if len(value) > MAX_VALUE_LENGTH:
            raise MetadataError(
                f"metadata[{key!r}] is {len(value)} characters; at most {MAX_VALUE_LENGTH}.",
                key=key,
            )
    return dict(metadata)
