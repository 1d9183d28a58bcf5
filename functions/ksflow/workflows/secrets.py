"""Webhook secrets: KMS-encrypted at rest, decrypted only to sign or verify.

Decrypted secrets are cached per process by ciphertext so a warm dispatcher or callback
does not pay a KMS round trip each time; the plaintext never leaves memory.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from ksflow import aws
from ksflow.config import settings


def _context(tenant_id: str, definition_id: str) -> dict[str, str]:
    """Binds a ciphertext to its definition: it cannot be replayed into another tenant's item."""
    return {"tenant_id": tenant_id, "workflow_definition_id": definition_id}


def encrypt(plaintext: str, tenant_id: str, definition_id: str) -> str:
    response = aws.client("kms").encrypt(
        KeyId=settings().kms_key_id, Plaintext=plaintext.encode(),
        EncryptionContext=_context(tenant_id, definition_id),
    )
    return base64.b64encode(response["CiphertextBlob"]).decode()


@lru_cache(maxsize=1024)
def decrypt(ciphertext: str, tenant_id: str, definition_id: str) -> str:
    response = aws.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=_context(tenant_id, definition_id),
    )
    return bytes(response["Plaintext"]).decode()
