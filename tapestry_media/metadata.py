"""Building and validating the metadata attached to every task.

For a submission's tasks the server owns ``submission_id``, ``user_id`` and the correlation key:
they come from the records, never from user-supplied metadata. Tasks created from code or the CLI
take every key from the caller, except the correlation key, which is always the Task's uuid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from .conf import get_settings

if TYPE_CHECKING:
    from .models import Submission

MAX_KEYS = 32
MAX_KEY_LENGTH = 32
MAX_VALUE_LENGTH = 2048
#: no ``__``: Django's lookup separator has no place in a key (``campaign__regex`` was once
#: read as a regex filter). The same pattern is published in the OpenAPI document.
_KEY = re.compile(r"^(?!.*__)[A-Za-z0-9_]{1,32}$")

SUBMISSION_OWNED_KEYS = ("submission_id", "user_id")


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


def client_key_limit() -> int:
    """How many keys a client's metadata may have: ``MAX_KEYS`` less every key the server may
    add to a task of an upload (its own keys, ``DEFAULT_METADATA``, campaign and source, the
    pipeline's step metadata). Metadata within it cannot break the limit once merged, so a
    request is refused before its file is stored; the OpenAPI document publishes the number."""
    config = get_settings()
    added = {*reserved_keys(for_submission=True), *config.DEFAULT_METADATA, "campaign", "source"}
    for steps in config.PIPELINE.values():
        for step in steps:
            added.update(step.get("metadata", {}))
    return max(0, MAX_KEYS - len(added))


def reserved_keys(*, for_submission: bool) -> tuple[str, ...]:
    correlation = get_settings().CORRELATION_KEY
    return (*SUBMISSION_OWNED_KEYS, correlation) if for_submission else (correlation,)


def reject_reserved(metadata: Mapping[str, Any], *, for_submission: bool) -> None:
    """Refuse user-supplied metadata that tries to set a server-owned key."""
    for key in reserved_keys(for_submission=for_submission):
        if key in metadata:
            raise MetadataError(
                f"metadata key {key!r} is set by the server and cannot be sent.", key=key
            )


def submission_metadata(submission: Submission) -> dict[str, str]:
    """What every task of ``submission`` carries, before step and receiver additions."""
    meta: dict[str, str] = {}
    if submission.campaign:
        meta["campaign"] = submission.campaign
    if submission.source:
        meta["source"] = submission.source
    return meta


def server_owned(submission: Submission) -> dict[str, str]:
    owned = {"submission_id": submission.public_id}
    if submission.uploader_id is not None:
        owned["user_id"] = user_public_id(submission.uploader_id)
    return owned


def user_public_id(user_pk: object) -> str:
    return f"usr_{user_pk}"


def build(
    *,
    layers: Iterable[Mapping[str, str]],
    owned: Mapping[str, str],
    correlation: str,
    for_submission: bool,
) -> dict[str, str]:
    """Merge ``layers`` in order (later wins), drop every reserved key they set, put the
    server-owned values and the correlation key on top, and validate the result. A reserved
    key the server has no value for (``user_id`` of an anonymous upload) stays absent."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    for key in reserved_keys(for_submission=for_submission):
        merged.pop(key, None)
    merged.update(owned)
    merged[get_settings().CORRELATION_KEY] = correlation
    return validate_metadata(merged)


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["key=value", ...]`` (CLI, query strings) → dict; a pair without '=' is an error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MetadataError(f"metadata {pair!r} must look like key=value.", key=key or None)
        result[key] = value
    return validate_metadata(result)
