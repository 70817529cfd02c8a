"""Building and validating the metadata attached to every task.

For a submission's tasks the server owns ``submission_id``, ``user_id`` and the correlation key:
they come from the records, never from user-supplied metadata. Tasks created from code or the CLI
take every key from the caller, except the correlation key, which is always the Task's uuid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .conf import get_settings

# The API's limits, re-exported: callers know them as metadata.MAX_KEYS, metadata.MetadataError…
from .metadata_limits import KEY_PATTERN as KEY_PATTERN
from .metadata_limits import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from .metadata_limits import MAX_KEYS as MAX_KEYS
from .metadata_limits import MAX_VALUE_LENGTH as MAX_VALUE_LENGTH
from .metadata_limits import MetadataError as MetadataError
from .metadata_limits import is_valid_key as is_valid_key
from .metadata_limits import validate_metadata as validate_metadata

if TYPE_CHECKING:
    from .models import Submission

SUBMISSION_OWNED_KEYS = ("submission_id", "user_id")


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
