"""Standard Webhooks signing and verification (https://www.standardwebhooks.com).

The key is the base64-decoded remainder of a `whsec_` secret, otherwise the secret's UTF-8
bytes, so runners can verify with the `standardwebhooks` package either way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _webhook(secret: str) -> Webhook:
    # A non-prefixed str would be base64-decoded by the library; bytes are used as the key.
    return Webhook(secret if secret.startswith(SECRET_PREFIX) else secret.encode())


def check_secret(secret: str) -> None:
    """Raise ValueError for a secret that cannot serve as a signing key.

    The library decodes leniently (characters outside the base64 alphabet are dropped), so a
    `whsec_` secret is checked strictly here: otherwise a typo would silently change the key.
    """
    try:
        if secret.startswith(SECRET_PREFIX):
            encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
            base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        _webhook(secret)
    except Exception as error:
        raise ValueError("webhook_secret starting with 'whsec_' must be followed by base64") from error


def sign_headers(secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": _webhook(secret).sign(message_id, timestamp, body),
    }


def has_signature(headers: Mapping[str, str]) -> bool:
    lowered = {k.lower() for k in headers}
    return any(h in lowered for h in SIGNATURE_HEADERS)


# Runners rolling a secret sign with both; more than a few signatures is not a roll but a guess.
MAX_SIGNATURES = 8


def message_id(headers: Mapping[str, str]) -> str | None:
    """The sender's `webhook-id`; unique per message by the spec, so it can be claimed once."""
    return next((v for k, v in headers.items() if k.lower() == "webhook-id"), None)


def verify(secret: str, headers: Mapping[str, str], body: str) -> bool:
    """True when one of the body's signatures is valid and made within the last five minutes.

    `webhook-signature` may carry several space-separated signatures. Each is checked on its
    own, so a malformed one next to a valid one does not spoil the valid one.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook = _webhook(secret)
    for signature in lowered.get("webhook-signature", "").split()[:MAX_SIGNATURES]:
        try:
            webhook.verify(body, {**lowered, "webhook-signature": signature}, json_parse=False)
        except (WebhookVerificationError, ValueError, TypeError):
            continue
        return True
    return False
