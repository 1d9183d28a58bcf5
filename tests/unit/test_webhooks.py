"""Standard Webhooks signing: what the dispatcher sends must verify with the `standardwebhooks` package."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ksflow.workflows import webhooks

WHSEC_SECRET = "whsec_" + base64.b64encode(b"a-random-32-byte-key-for-signing").decode()
PLAIN_SECRET = "correct horse battery staple"
BODY = json.dumps({"type": "workflow_run.dispatch", "run": {"id": "r-1"}}, separators=(",", ":"))


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("secret", [WHSEC_SECRET, PLAIN_SECRET])
def test_signed_headers_verify_with_the_same_secret(secret: str) -> None:
    headers = webhooks.sign_headers(secret, "msg_1", _now(), BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert webhooks.verify(secret, headers, BODY)


@pytest.mark.parametrize("header_case", [str.lower, str.title, str.upper])
def test_header_names_are_case_insensitive(header_case: object) -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY)
    recased = {header_case(name): value for name, value in headers.items()}  # type: ignore[operator]
    assert webhooks.has_signature(recased)
    assert webhooks.verify(WHSEC_SECRET, recased, BODY)


def test_whsec_secret_verifies_with_the_standardwebhooks_package() -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_whsec", _now(), BODY)
    assert Webhook(WHSEC_SECRET).verify(BODY, headers) == json.loads(BODY)


def test_plain_secret_verifies_with_the_standardwebhooks_package_keyed_by_its_utf8_bytes() -> None:
    headers = webhooks.sign_headers(PLAIN_SECRET, "msg_plain", _now(), BODY)
    assert Webhook(PLAIN_SECRET.encode()).verify(BODY, headers) == json.loads(BODY)


def test_non_ascii_plain_secret_is_keyed_by_its_utf8_bytes() -> None:
    secret = "clé secrète ✓"
    headers = webhooks.sign_headers(secret, "msg_utf8", _now(), BODY)
    assert Webhook(secret.encode("utf-8")).verify(BODY, headers) == json.loads(BODY)


def test_a_signature_made_by_the_standardwebhooks_package_verifies() -> None:
    """The callback direction: a runner signs with the library, the service verifies."""
    now = _now()
    for secret, library_key in ((WHSEC_SECRET, WHSEC_SECRET), (PLAIN_SECRET, PLAIN_SECRET.encode())):
        signature = Webhook(library_key).sign("msg_cb", now, BODY)
        headers = {"webhook-id": "msg_cb", "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signature}
        assert webhooks.verify(secret, headers, BODY)


def test_tampered_body_fails() -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY)
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY.replace("r-1", "r-2"))
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY + " ")


def test_tampered_message_id_fails() -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY)
    assert not webhooks.verify(WHSEC_SECRET, {**headers, "webhook-id": "msg_2"}, BODY)


@pytest.mark.parametrize(("signer", "verifier"), [
    (WHSEC_SECRET, "whsec_" + base64.b64encode(b"another-key-entirely-different!!").decode()),
    (PLAIN_SECRET, PLAIN_SECRET + "!"),
    # Same characters, different key derivation: a plain secret is not base64-decoded.
    ("c2VjcmV0", "whsec_c2VjcmV0"),
])
def test_wrong_secret_fails(signer: str, verifier: str) -> None:
    headers = webhooks.sign_headers(signer, "msg_1", _now(), BODY)
    assert not webhooks.verify(verifier, headers, BODY)


@pytest.mark.parametrize("age", [timedelta(minutes=5, seconds=30), timedelta(hours=1)])
def test_timestamp_older_than_five_minutes_fails(age: timedelta) -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now() - age, BODY)
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY)


def test_timestamp_within_five_minutes_passes() -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now() - timedelta(minutes=4), BODY)
    assert webhooks.verify(WHSEC_SECRET, headers, BODY)


def test_timestamp_far_in_the_future_fails() -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now() + timedelta(minutes=10), BODY)
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails(missing: str) -> None:
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY)
    del headers[missing]
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY)


def test_no_headers_at_all() -> None:
    assert not webhooks.has_signature({"content-type": "application/json"})
    assert not webhooks.verify(WHSEC_SECRET, {}, BODY)


@pytest.mark.parametrize("signature", ["", "v1,", "v1,not-base64!!", "v2,AAAA", "garbage", "v1"])
def test_malformed_signature_header_fails_without_raising(signature: str) -> None:
    headers = {**webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY), "webhook-signature": signature}
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY)


@pytest.mark.parametrize("timestamp", ["", "yesterday", "1.5e9", "-1"])
def test_malformed_timestamp_fails_without_raising(timestamp: str) -> None:
    headers = {**webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY), "webhook-timestamp": timestamp}
    assert not webhooks.verify(WHSEC_SECRET, headers, BODY)


def test_one_valid_signature_among_several_is_enough() -> None:
    """Standard Webhooks allows space-separated signatures during secret rotation."""
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now(), BODY)
    headers["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + headers["webhook-signature"]
    assert webhooks.verify(WHSEC_SECRET, headers, BODY)


def test_library_rejects_what_verify_rejects() -> None:
    """The service and a runner using the package agree on a stale signature."""
    headers = webhooks.sign_headers(WHSEC_SECRET, "msg_1", _now() - timedelta(minutes=6), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC_SECRET).verify(BODY, headers)


@pytest.mark.parametrize("secret", [WHSEC_SECRET, PLAIN_SECRET, "whsec_" + "QUJD", "x", "whsec"])
def test_check_secret_accepts_usable_secrets(secret: str) -> None:
    webhooks.check_secret(secret)


@pytest.mark.parametrize("secret", [
    "whsec_",
    "whsec_!!!!",
    "whsec_not base64",
    "whsec_éé",
    "whsec_my-secret-passphrase",
    "whsec_abc*def",
    "whsec_QUJD$",
])
def test_check_secret_rejects_whsec_prefix_followed_by_non_base64(secret: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        webhooks.check_secret(secret)
