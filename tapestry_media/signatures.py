"""Webhook signature schemes: Ittybit's own header and Standard Webhooks.

* ``Ittybit-Signature: <hex>`` — lowercase hex HMAC-SHA256 of the raw body, keyed with the
  secret exactly as issued; an optional ``sha256=`` prefix is tolerated.
* Standard Webhooks — ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64>``
  (several space-separated entries allowed); the key is the base64-decoded part of the secret
  after ``whsec_`` and the signed text is ``"{id}.{timestamp}.{body}"``.

Pure functions (Django only for ``@sensitive_variables``, which keeps the secrets out of
error reports): the webhook view passes ``request.headers`` and the raw body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from django.views.decorators.debug import sensitive_variables

Scheme = Literal["ittybit", "standard"]
ITTYBIT: Final = "ittybit"
STANDARD: Final = "standard"

ITTYBIT_HEADER = "ittybit-signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
_STANDARD_HEADERS = (STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER)
#: Svix (the reference implementation of Standard Webhooks) sends the same three headers under
#: its own names; they mean the same and are read when no ``webhook-*`` header is present.
_SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")

STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(Exception):
    """A webhook whose signature cannot be trusted. ``reason`` is a short machine-readable code:
    ``no_secrets``, ``missing_header``, ``malformed_header``, ``malformed_secret``,
    ``stale_timestamp``, ``future_timestamp`` or ``bad_signature``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --- signing (used by the contract server and by tests) --------------------------------------


@sensitive_variables()
def sign_ittybit(body: bytes, secret: str) -> str:
    """The ``Ittybit-Signature`` value for ``body``: lowercase hex HMAC-SHA256."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@sensitive_variables()
def sign_standard(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> str:
    """The base64 Standard Webhooks signature (without the ``v1,`` label)."""
    return _standard_digest(_standard_key(secret), body, msg_id, str(timestamp))


@sensitive_variables()
def standard_headers(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    signature = sign_standard(body, secret, msg_id=msg_id, timestamp=timestamp)
    return {
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: f"v1,{signature}",
    }


# --- verifying --------------------------------------------------------------------------------


@sensitive_variables("secrets")
def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> Scheme:
    """Check the webhook's signature against every secret (rotation) and return the scheme
    that matched. Standard Webhooks headers, when present, win over ``Ittybit-Signature``.

    Raises :class:`SignatureError` with a clear reason; never any other exception.
    """
    return match(headers, body, secrets, tolerance=tolerance, now=now)[0]


@sensitive_variables("secrets", "usable")
def match(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> tuple[Scheme, int]:
    """:func:`verify`, also returning the index in ``secrets`` of the secret that matched
    (the first one, in order: put the broadest keys first)."""
    usable = [(index, s) for index, s in enumerate(secrets) if s]
    if not usable:
        raise SignatureError(
            "no_secrets",
            "no webhook secrets are configured: set TAPESTRY_MEDIA['WEBHOOK_SECRETS'].",
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    if not any(name in lowered for name in _STANDARD_HEADERS):
        for standard, svix in zip(_STANDARD_HEADERS, _SVIX_HEADERS, strict=True):
            if svix in lowered:
                lowered[standard] = lowered[svix]
    if any(name in lowered for name in _STANDARD_HEADERS):
        return STANDARD, _verify_standard(lowered, body, usable, tolerance=tolerance, now=now)
    return ITTYBIT, _verify_ittybit(lowered, body, usable)


Indexed = Sequence[tuple[int, str]]


@sensitive_variables("secrets", "secret")
def _verify_ittybit(headers: Mapping[str, str], body: bytes, secrets: Indexed) -> int:
    value = headers.get(ITTYBIT_HEADER)
    if value is None or not value.strip():
        raise SignatureError(
            "missing_header",
            "the request has neither an Ittybit-Signature header nor Standard Webhooks headers.",
        )
    given = value.strip()
    if given[:7].lower() == "sha256=":
        given = given[7:]
    if not _HEX_DIGEST.fullmatch(given):
        raise SignatureError(
            "malformed_header", "Ittybit-Signature is not a 64-character hex HMAC-SHA256."
        )
    given_bytes = given.lower().encode()
    for index, secret in secrets:
        if hmac.compare_digest(sign_ittybit(body, secret).encode(), given_bytes):
            return index
    raise SignatureError(
        "bad_signature", "Ittybit-Signature does not match the body with any configured secret."
    )


@sensitive_variables("secrets", "keys", "key")
def _verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Indexed,
    *,
    tolerance: int,
    now: float | None,
) -> int:
    missing = [name for name in _STANDARD_HEADERS if not headers.get(name, "").strip()]
    if missing:
        raise SignatureError(
            "missing_header", f"Standard Webhooks header(s) missing: {', '.join(missing)}."
        )
    msg_id = headers[STANDARD_ID_HEADER].strip()
    timestamp_text = headers[STANDARD_TIMESTAMP_HEADER].strip()
    _check_timestamp(timestamp_text, tolerance=tolerance, now=now)
    given = _standard_signatures(headers[STANDARD_SIGNATURE_HEADER])

    keys, malformed = _standard_keys(secrets)
    for index, key in keys:
        expected = _standard_digest(key, body, msg_id, timestamp_text).encode()
        # Compare against every entry, without stopping early, so timing says nothing.
        if any([hmac.compare_digest(expected, sig) for sig in given]):
            return index
    if malformed:
        raise SignatureError(
            "malformed_secret",
            f"no signature matched, and {malformed} configured secret(s) starting with "
            f"{STANDARD_SECRET_PREFIX!r} are not valid base64: check "
            "TAPESTRY_MEDIA['WEBHOOK_SECRETS'].",
        )
    raise SignatureError(
        "bad_signature", "webhook-signature does not match the body with any configured secret."
    )


def _check_timestamp(text: str, *, tolerance: int, now: float | None) -> None:
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise SignatureError(
            "malformed_header", "webhook-timestamp is not a whole number of Unix seconds."
        )
    current = time.time() if now is None else now
    skew = int(text) - current
    if skew < -tolerance:
        raise SignatureError(
            "stale_timestamp",
            f"webhook-timestamp is {int(-skew)} s old (more than {tolerance} s): replay refused.",
        )
    if skew > tolerance:
        raise SignatureError(
            "future_timestamp",
            f"webhook-timestamp is {int(skew)} s in the future (more than {tolerance} s).",
        )


def _standard_signatures(value: str) -> list[bytes]:
    """The ``v1`` signatures of a header such as ``"v1,abc= v1,def="``; other versions are
    ignored (``v1a`` is an asymmetric scheme we do not use)."""
    found = []
    for entry in value.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and signature:
            found.append(signature.encode("utf-8", "replace"))
    if not found:
        raise SignatureError(
            "malformed_header", "webhook-signature holds no 'v1,<base64>' signature."
        )
    return found


@sensitive_variables()
def _standard_keys(secrets: Indexed) -> tuple[list[tuple[int, bytes]], int]:
    """Decoded keys, and how many ``whsec_`` secrets were not base64. A secret without the
    prefix is decoded too (as the reference libraries do) and skipped when it is not base64:
    it is then an Ittybit-scheme secret."""
    keys: list[tuple[int, bytes]] = []
    malformed = 0
    for index, secret in secrets:
        try:
            keys.append((index, _standard_key(secret)))
        except SignatureError:
            if secret.startswith(STANDARD_SECRET_PREFIX):
                malformed += 1
    return keys, malformed


@sensitive_variables()
def _standard_key(secret: str) -> bytes:
    encoded = secret.removeprefix(STANDARD_SECRET_PREFIX)
    # Unpadded base64 is accepted, as the reference libraries accept it.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            "malformed_secret",
            f"a webhook secret starting with {STANDARD_SECRET_PREFIX!r} must be base64 after "
            "the prefix.",
        ) from exc
    if not key:
        raise SignatureError("malformed_secret", "a Standard Webhooks secret decodes to nothing.")
    return key


@sensitive_variables("secrets", "secret")
def malformed_secrets(secrets: Sequence[str]) -> list[int]:
    """The positions of secrets that carry the ``whsec_`` prefix but are not base64 after it
    (for the system check: such a secret can never verify a delivery)."""
    bad = []
    for index, secret in enumerate(secrets):
        if secret.startswith(STANDARD_SECRET_PREFIX):
            try:
                _standard_key(secret)
            except SignatureError:
                bad.append(index)
    return bad


@sensitive_variables()
def _standard_digest(key: bytes, body: bytes, msg_id: str, timestamp: str) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
