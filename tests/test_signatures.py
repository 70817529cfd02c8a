"""Webhook signature schemes, checked against vectors computed outside the code under test."""

from __future__ import annotations

import base64

import pytest

from tapestry_media import signatures
from tapestry_media.signatures import SignatureError, sign_ittybit, standard_headers, verify

# The seed's webhook body, byte for byte.
BODY = (
    b'{"id":"task_abc123","status":"succeeded","metadata":{"user_id":"usr_abc123",'
    b'"submission_id":"sub_9182","campaign":"summer-launch"},'
    b'"output":{"url":"https://cdn.ittybit.com/abc.mp4"}}'
)
ITTYBIT_SECRET = "itty_whsec_test_2f9c"
# printf '%s' "$BODY" | openssl dgst -sha256 -hmac itty_whsec_test_2f9c
ITTYBIT_VECTOR = "03e4bc2b43424a4790cb0bf0f8c859db123b26ee633f4363d93209ea03d78932"

# base64("tapestry-standard-webhook-key-01")
STANDARD_SECRET = "whsec_dGFwZXN0cnktc3RhbmRhcmQtd2ViaG9vay1rZXktMDE="
MSG_ID = "msg_2mJpQ7"
TS = 1736935200
# printf '%s' "msg_2mJpQ7.1736935200.$BODY" | openssl dgst -sha256 -mac HMAC \
#   -macopt hexkey:74617065737472792d7374616e646172642d776562686f6f6b2d6b65792d3031 -binary | base64
STANDARD_VECTOR = "7GYqXCijvNFlpM6QzHcczzpGiK9U5jPUsQout348ZQo="


def ittybit_headers(signature: str) -> dict[str, str]:
    return {"Ittybit-Signature": signature, "Content-Type": "application/json"}


# --- known answers ----------------------------------------------------------------------------


def test_ittybit_signature_matches_openssl() -> None:
    assert sign_ittybit(BODY, ITTYBIT_SECRET) == ITTYBIT_VECTOR


def test_standard_headers_match_openssl() -> None:
    headers = standard_headers(BODY, STANDARD_SECRET, msg_id=MSG_ID, timestamp=TS)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": f"v1,{STANDARD_VECTOR}",
    }


def test_standard_webhooks_published_vector() -> None:
    # The example in the Standard Webhooks specification, re-checked here with openssl.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    scheme = verify(
        headers,
        b'{"test": 2432232314}',
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        now=1614265330,
    )
    assert scheme == "standard"


# --- Ittybit-Signature ------------------------------------------------------------------------


def test_ittybit_known_vector_verifies() -> None:
    assert verify(ittybit_headers(ITTYBIT_VECTOR), BODY, [ITTYBIT_SECRET]) == "ittybit"


@pytest.mark.parametrize("name", ["ittybit-signature", "ITTYBIT-SIGNATURE", "Ittybit-Signature"])
def test_header_lookup_ignores_case(name: str) -> None:
    assert verify({name: ITTYBIT_VECTOR}, BODY, [ITTYBIT_SECRET]) == "ittybit"


@pytest.mark.parametrize("prefix", ["sha256=", "SHA256="])
def test_sha256_prefix_accepted(prefix: str) -> None:
    assert verify(ittybit_headers(prefix + ITTYBIT_VECTOR), BODY, [ITTYBIT_SECRET]) == "ittybit"


def test_tampered_body_rejected() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(
            ittybit_headers(ITTYBIT_VECTOR), BODY.replace(b"succeeded", b"failed"), [ITTYBIT_SECRET]
        )
    assert caught.value.reason == "bad_signature"


def test_flipped_signature_rejected() -> None:
    flipped = ITTYBIT_VECTOR[:-1] + ("0" if ITTYBIT_VECTOR[-1] != "0" else "1")
    with pytest.raises(SignatureError) as caught:
        verify(ittybit_headers(flipped), BODY, [ITTYBIT_SECRET])
    assert caught.value.reason == "bad_signature"


def test_wrong_secret_rejected() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(ittybit_headers(ITTYBIT_VECTOR), BODY, ["another-secret"])
    assert caught.value.reason == "bad_signature"


def test_rotated_secret_list_accepted() -> None:
    assert (
        verify(ittybit_headers(ITTYBIT_VECTOR), BODY, ["new-secret", ITTYBIT_SECRET]) == "ittybit"
    )
    assert verify(ittybit_headers(ITTYBIT_VECTOR), BODY, [ITTYBIT_SECRET, "new"]) == "ittybit"


@pytest.mark.parametrize("value", ["not-hex", "abc", ITTYBIT_VECTOR + "00", "é" * 64])
def test_malformed_ittybit_header(value: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(ittybit_headers(value), BODY, [ITTYBIT_SECRET])
    assert caught.value.reason == "malformed_header"


@pytest.mark.parametrize(
    "headers", [{}, {"Content-Type": "application/json"}, {"Ittybit-Signature": " "}]
)
def test_missing_signature_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(headers, BODY, [ITTYBIT_SECRET])
    assert caught.value.reason == "missing_header"
    assert "Ittybit-Signature" in str(caught.value)


@pytest.mark.parametrize("secrets", [[], [""], ()])
def test_no_secrets_configured(secrets: list[str]) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(ittybit_headers(ITTYBIT_VECTOR), BODY, secrets)
    assert caught.value.reason == "no_secrets"
    assert "WEBHOOK_SECRETS" in str(caught.value)


# --- Standard Webhooks ------------------------------------------------------------------------


def standard(**overrides: str) -> dict[str, str]:
    headers = {
        "Webhook-Id": MSG_ID,
        "Webhook-Timestamp": str(TS),
        "Webhook-Signature": f"v1,{STANDARD_VECTOR}",
    }
    headers.update(overrides)
    return headers


def test_standard_known_vector_verifies() -> None:
    assert verify(standard(), BODY, [STANDARD_SECRET], now=TS) == "standard"


def test_standard_wins_over_ittybit_header() -> None:
    headers = {**standard(), "Ittybit-Signature": "0" * 64}
    assert verify(headers, BODY, [STANDARD_SECRET], now=TS) == "standard"


def test_standard_several_signatures_in_header() -> None:
    value = f"v1,bm9wZQ== v1a,ignored v1,{STANDARD_VECTOR}"
    assert verify(standard(**{"Webhook-Signature": value}), BODY, [STANDARD_SECRET], now=TS)


def test_standard_rotated_secret_list_accepted() -> None:
    other = "whsec_" + "b3RoZXIta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2g="
    assert verify(standard(), BODY, [other, ITTYBIT_SECRET, STANDARD_SECRET], now=TS)


def test_standard_bad_signature() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(), BODY + b" ", [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "bad_signature"


def test_standard_signed_id_is_checked() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(**{"Webhook-Id": "msg_other"}), BODY, [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "bad_signature"


def test_standard_wrong_secret() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(), BODY, ["whsec_d3Jvbmcta2V5"], now=TS)
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("now", "reason"),
    [(TS + 301, "stale_timestamp"), (TS - 301, "future_timestamp")],
)
def test_standard_timestamp_out_of_tolerance(now: int, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(), BODY, [STANDARD_SECRET], now=now)
    assert caught.value.reason == reason


@pytest.mark.parametrize("now", [TS + 300, TS - 300])
def test_standard_timestamp_at_the_edge_is_accepted(now: int) -> None:
    assert verify(standard(), BODY, [STANDARD_SECRET], now=now) == "standard"


def test_standard_tolerance_is_a_parameter() -> None:
    with pytest.raises(SignatureError):
        verify(standard(), BODY, [STANDARD_SECRET], now=TS + 11, tolerance=10)


def test_standard_stale_timestamp_checked_against_the_clock() -> None:
    # no ``now``: the real clock is far past TS
    with pytest.raises(SignatureError) as caught:
        verify(standard(), BODY, [STANDARD_SECRET])
    assert caught.value.reason == "stale_timestamp"


@pytest.mark.parametrize("name", ["Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"])
def test_standard_missing_one_header(name: str) -> None:
    headers = standard()
    del headers[name]
    with pytest.raises(SignatureError) as caught:
        verify(headers, BODY, [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "missing_header"
    assert name.lower() in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"Webhook-Timestamp": "yesterday"},
        {"Webhook-Timestamp": "-5"},
        {"Webhook-Signature": STANDARD_VECTOR},
        {"Webhook-Signature": "v2,abc"},
        {"Webhook-Signature": "v1,"},
    ],
)
def test_standard_malformed_header(overrides: dict[str, str]) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(**overrides), BODY, [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "malformed_header"


# "whsec_abc" (unpadded base64) is a valid secret, as in the reference library; one base64
# character short of a byte is not.
@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_é", "whsec_abcde"])
def test_standard_malformed_secret_is_a_signature_error(secret: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(), BODY, [secret], now=TS)
    assert caught.value.reason == "malformed_secret"
    assert "WEBHOOK_SECRETS" in str(caught.value)


def test_standard_malformed_secret_does_not_block_a_good_one() -> None:
    assert verify(standard(), BODY, ["whsec_%%%", STANDARD_SECRET], now=TS) == "standard"


def test_signing_with_a_malformed_secret_raises_signature_error() -> None:
    with pytest.raises(SignatureError):
        standard_headers(BODY, "whsec_%%%", msg_id=MSG_ID, timestamp=TS)


def test_non_ascii_signature_value_is_rejected_cleanly() -> None:
    with pytest.raises(SignatureError) as caught:
        verify(standard(**{"Webhook-Signature": "v1,é"}), BODY, [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "bad_signature"


# --- what the constant-time comparison is for -------------------------------------------------
# Timing itself is not measured: a few nanoseconds of early exit cannot be told from the noise of
# an HMAC on a shared machine. What can be checked is what the comparison must do: refuse a
# signature that differs anywhere, try every secret and every signature entry, and decide alone.


def flip_last_byte(signature_b64: str) -> str:
    raw = bytearray(base64.b64decode(signature_b64))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_an_ittybit_signature_differing_at_any_position_is_refused() -> None:
    for position, char in enumerate(ITTYBIT_VECTOR):
        changed = "0" if char != "0" else "1"
        signature = ITTYBIT_VECTOR[:position] + changed + ITTYBIT_VECTOR[position + 1 :]
        with pytest.raises(SignatureError) as caught:
            verify(ittybit_headers(signature), BODY, [ITTYBIT_SECRET])
        assert caught.value.reason == "bad_signature", position
    assert verify(ittybit_headers(ITTYBIT_VECTOR), BODY, [ITTYBIT_SECRET])  # positive control


def test_a_standard_signature_differing_in_its_last_byte_is_refused() -> None:
    headers = standard(**{"Webhook-Signature": f"v1,{flip_last_byte(STANDARD_VECTOR)}"})
    with pytest.raises(SignatureError) as caught:
        verify(headers, BODY, [STANDARD_SECRET], now=TS)
    assert caught.value.reason == "bad_signature"


#: Valid keys in both schemes, none of them the one that signed.
DECOY_SECRETS = [
    "whsec_ZGVjb3ktb25lLWtleQ==",
    "whsec_ZGVjb3ktdHdvLWtleQ==",
    "whsec_ZGVjb3ktdGhyZWUta2V5",
]


@pytest.mark.parametrize("position", range(len(DECOY_SECRETS) + 1))
@pytest.mark.parametrize("scheme", ["ittybit", "standard"])
def test_the_right_secret_is_found_at_any_position(scheme: str, position: int) -> None:
    right = ITTYBIT_SECRET if scheme == "ittybit" else STANDARD_SECRET
    secrets = [*DECOY_SECRETS[:position], right, *DECOY_SECRETS[position:]]
    headers = ittybit_headers(ITTYBIT_VECTOR) if scheme == "ittybit" else standard()
    assert signatures.match(headers, BODY, secrets, now=TS) == (scheme, position)


@pytest.mark.parametrize("position", range(4))
def test_the_right_standard_signature_is_found_at_any_position_in_the_header(
    position: int,
) -> None:
    decoys = [f"v1,{flip_last_byte(STANDARD_VECTOR)}", "v1,bm9wZQ==", "v1a,ignored"]
    entries = [*decoys[:position], f"v1,{STANDARD_VECTOR}", *decoys[position:]]
    headers = standard(**{"Webhook-Signature": " ".join(entries)})
    assert verify(headers, BODY, [STANDARD_SECRET], now=TS) == "standard"
    only_decoys = standard(**{"Webhook-Signature": " ".join(decoys)})
    with pytest.raises(SignatureError):
        verify(only_decoys, BODY, [STANDARD_SECRET], now=TS)


# A structural check, kept on purpose: the verdict is hmac.compare_digest's alone, so no ``==``
# or early exit elsewhere decides it. It does not count calls: comparing more entries, or in
# another order, still passes.
@pytest.mark.parametrize("scheme", ["ittybit", "standard"])
def test_the_verdict_is_the_constant_time_comparisons(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    def check(signature_headers: dict[str, str], secret: str) -> str:
        return verify(signature_headers, BODY, [secret], now=TS)

    right, secret = (
        (ittybit_headers(ITTYBIT_VECTOR), ITTYBIT_SECRET)
        if scheme == "ittybit"
        else (standard(), STANDARD_SECRET)
    )
    wrong = (
        ittybit_headers("0" * 64)
        if scheme == "ittybit"
        else standard(**{"Webhook-Signature": f"v1,{flip_last_byte(STANDARD_VECTOR)}"})
    )
    assert check(right, secret) == scheme
    with pytest.raises(SignatureError):
        check(wrong, secret)

    monkeypatch.setattr(signatures.hmac, "compare_digest", lambda a, b: False)
    with pytest.raises(SignatureError):
        check(right, secret)
    monkeypatch.setattr(signatures.hmac, "compare_digest", lambda a, b: True)
    assert check(wrong, secret) == scheme
