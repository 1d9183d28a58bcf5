"""Tenant, user and API key items.

Items (single table, `pk`/`sk`):
- `TENANT#{tenant_id}` / `TENANT`: the tenant.
- `IDENTITY#{tenant_id}` / `USER#{user_id}`: a tenant user and its role.
- `IDENTITY#{tenant_id}` / `EMAIL#{sha256(case-folded email)}`: claims an email within the tenant,
  written in the user's transaction, so no two users of a tenant share one (hashed: emails have no
  length limit, sort keys do).
- `APIKEY#{sha256(key)}` / `APIKEY`: an API key, stored only as its hash, with the
  tenant, user and role it acts as (denormalized so authentication is one read).
- `IDENTITY#{tenant_id}` / `USERKEY#{user_id}#{key_id}`: the key as its owner lists it (name,
  last characters, hash), so keys can be listed and revoked by id.

Users and keys sit in partitions of their own, outside the `TENANT#` partitions of the knowledge
base and ingestion: the deployed functions that work there (ingestion) are allowed those partitions
only, by key prefix, so they can neither read nor forge a user or a key.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.identity.models import CreatedTenant, CreatedUser, Principal, Role
from ksflow.knowledge import store as knowledge_store

API_KEY_PREFIX = "sk-"
# Successful authentications are cached briefly per process: a key revoked in the table
# stops working within this many seconds. It keeps a request's reads to its resource.
AUTH_CACHE_SECONDS = 30.0
AUTH_CACHE_MAX_ENTRIES = 10_000

_auth_cache: dict[str, tuple[float, Principal]] = {}
_auth_lock = threading.Lock()


def _identity_pk(tenant_id: str) -> str:
    return f"IDENTITY#{tenant_id}"


def hash_api_key(api_key: str) -> str:
    """API keys are 256-bit random strings, so a plain SHA-256 is a safe at-rest form."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(BaseModel):
    id: str
    name: str
    key_suffix: str
    created_at: datetime
    key_hash: str


KEY_SUFFIX_LENGTH = 4


def _api_key_items(api_key: str, principal: Principal, name: str, now: str) -> tuple[ApiKey, list[dict[str, Any]]]:
    key = ApiKey(id=str(uuid.uuid4()), name=name, key_suffix=api_key[-KEY_SUFFIX_LENGTH:],
                 created_at=clock.parse(now), key_hash=hash_api_key(api_key))
    credential = {"pk": f"APIKEY#{key.key_hash}", "sk": "APIKEY", "tenant_id": principal.tenant_id,
                  "user_id": principal.user_id, "role": principal.role.value, "key_id": key.id, "created_at": now}
    listing = {"pk": _identity_pk(principal.tenant_id), "sk": f"USERKEY#{principal.user_id}#{key.id}",
               **key.model_dump(mode="json")}
    return key, [credential, listing]


class DuplicateEmail(ValueError):
    """The tenant already has a user with this email."""


def _user_items(principal: Principal, email: str, now: str) -> list[dict[str, Any]]:
    """The email claim, then the user: a transaction cancelled at its first item means the email is taken."""
    email_key = hashlib.sha256(email.strip().casefold().encode()).hexdigest()
    claim = {"pk": _identity_pk(principal.tenant_id), "sk": f"EMAIL#{email_key}", "user_id": principal.user_id}
    user = {
        "pk": _identity_pk(principal.tenant_id),
        "sk": f"USER#{principal.user_id}",
        "user_id": principal.user_id,
        "email": email,
        "role": principal.role.value,
        "created_at": now,
    }
    return [claim, user]


def _put(item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def create_tenant(name: str, owner_email: str, api_key: str | None = None) -> CreatedTenant:
    """Create a tenant with its root folder and first OWNER, atomically.

    `api_key` fixes the owner's key (the local stack's `--api-key`); by default a new one is made.
    """
    now = clock.iso(clock.now())
    tenant_id = str(uuid.uuid4())
    owner = Principal(tenant_id=tenant_id, user_id=str(uuid.uuid4()), role=Role.OWNER)
    api_key = api_key or _new_api_key()
    root_items, root_path_part_id = knowledge_store.root_folder_items(tenant_id, owner.user_id, now)
    tenant_item = {"pk": f"TENANT#{tenant_id}", "sk": "TENANT", "tenant_id": tenant_id, "name": name,
                   "root_path_part_id": root_path_part_id, "created_at": now}
    _, key_items = _api_key_items(api_key, owner, "initial key", now)
    items = [*_user_items(owner, owner_email, now), tenant_item, *key_items, *root_items]
    _transact(items)
    return CreatedTenant(tenant_id=tenant_id, root_path_part_id=root_path_part_id,
                         user_id=owner.user_id, api_key=api_key)


def create_user(tenant_id: str, email: str, role: Role) -> CreatedUser:
    """Add a user with its first API key to an existing tenant; DuplicateEmail if the email is taken there."""
    if get_tenant(tenant_id) is None:
        raise LookupError(f"tenant {tenant_id} does not exist")
    now = clock.iso(clock.now())
    user = Principal(tenant_id=tenant_id, user_id=str(uuid.uuid4()), role=role)
    api_key = _new_api_key()
    _, key_items = _api_key_items(api_key, user, "initial key", now)
    try:
        _transact([*_user_items(user, email, now), *key_items])
    except ClientError as error:
        if 0 in aws.failed_conditions(error):
            raise DuplicateEmail(f"tenant {tenant_id} already has a user with email {email}") from None
        raise
    return CreatedUser(user_id=user.user_id, api_key=api_key)


def create_api_key(principal: Principal, name: str, api_key: str | None = None) -> tuple[ApiKey, str]:
    """A new key for the calling user (or the given one); the plaintext is returned once and never stored."""
    api_key = api_key or _new_api_key()
    key, items = _api_key_items(api_key, principal, name, clock.iso(clock.now()))
    _transact(items)
    return key, api_key


def list_api_keys(principal: Principal) -> list[ApiKey]:
    items = aws.table(settings().table_name).query(
        KeyConditionExpression=Key("pk").eq(_identity_pk(principal.tenant_id))
        & Key("sk").begins_with(f"USERKEY#{principal.user_id}#"),
    )["Items"]
    return sorted((ApiKey.model_validate(item) for item in items), key=lambda k: (k.created_at, k.id))


def get_api_key(principal: Principal, key_id: str) -> ApiKey | None:
    item = aws.table(settings().table_name).get_item(
        Key={"pk": _identity_pk(principal.tenant_id), "sk": f"USERKEY#{principal.user_id}#{key_id}"}).get("Item")
    return ApiKey.model_validate(item) if item else None


def revoke_api_key(principal: Principal, key: ApiKey) -> None:
    """Both items go together; other warm containers honour it within AUTH_CACHE_SECONDS."""
    table = aws.table(settings().table_name)
    table.meta.client.transact_write_items(TransactItems=[
        {"Delete": {"TableName": table.name, "Key": {"pk": f"APIKEY#{key.key_hash}", "sk": "APIKEY"}}},
        {"Delete": {"TableName": table.name,
                    "Key": {"pk": _identity_pk(principal.tenant_id), "sk": f"USERKEY#{principal.user_id}#{key.id}"}}},
    ])
    with _auth_lock:
        _auth_cache.pop(key.key_hash, None)


def _transact(items: list[dict[str, Any]]) -> None:
    table = aws.table(settings().table_name)
    table.meta.client.transact_write_items(
        TransactItems=[{"Put": {**_put(item)["Put"], "TableName": table.name}} for item in items]
    )


def get_tenant(tenant_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = aws.table(settings().table_name).get_item(
        Key={"pk": f"TENANT#{tenant_id}", "sk": "TENANT"}
    ).get("Item")
    return item


def user_key(tenant_id: str, user_id: str) -> dict[str, str]:
    return {"pk": _identity_pk(tenant_id), "sk": f"USER#{user_id}"}


def get_user(tenant_id: str, user_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = aws.table(settings().table_name).get_item(Key=user_key(tenant_id, user_id)).get(
        "Item")
    return item


def principal_of(tenant_id: str, user_id: str) -> Principal | None:
    """Whom a stored user id acts as today (its current role), or None once the user is gone."""
    item = get_user(tenant_id, user_id)
    return Principal(tenant_id=tenant_id, user_id=user_id, role=Role(item["role"])) if item else None


def authenticate(api_key: str) -> Principal | None:
    """The principal an API key acts as, or None for an unknown key."""
    if not api_key.startswith(API_KEY_PREFIX) or len(api_key) > 200:
        return None
    key_hash = hash_api_key(api_key)
    now = time.monotonic()
    with _auth_lock:
        cached = _auth_cache.get(key_hash)
    if cached and cached[0] > now:
        return cached[1]
    item = aws.table(settings().table_name).get_item(Key={"pk": f"APIKEY#{key_hash}", "sk": "APIKEY"}).get("Item")
    if item is None:
        return None
    principal = Principal(tenant_id=item["tenant_id"], user_id=item["user_id"], role=Role(item["role"]))
    with _auth_lock:
        if len(_auth_cache) >= AUTH_CACHE_MAX_ENTRIES:
            _auth_cache.clear()
        _auth_cache[key_hash] = (now + AUTH_CACHE_SECONDS, principal)
    return principal


def clear_auth_cache() -> None:
    with _auth_lock:
        _auth_cache.clear()
