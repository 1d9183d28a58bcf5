"""Grants of a capability on a path part's subtree to a USER (`/v1/user-permissions`).

Items (partition `TENANT#{tenant_id}`):
- `GRANT#{user_id}#{path_part_id}`: the grant. Keyed by the (user, path part) pair, so a
  second grant on a pair cannot be written, even by concurrent requests; a user's grants
  are one query away, which is how `Access` reads them.
- `PERMISSION#{permission_id}`: points at the grant's pair, so a permission id alone finds it.

A user's capability on a part is the strongest of its grants on the part and its ancestors
(`knowledge.store.Access`): with one grant per pair, which grant counts never depends on
the order DynamoDB returns them in.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.errors import Conflict, Forbidden, NotFound
from ksflow.identity import store as identity
from ksflow.identity.models import Principal
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.store import Capability


class Permission(BaseModel):
    id: str
    tenant_id: str
    user_id: str
    path_part_id: str
    capability: Capability
    created_at: datetime
    updated_at: datetime


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _pointer_key(tenant_id: str, permission_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"PERMISSION#{permission_id}"}


def _grant_key(tenant_id: str, user_id: str, path_part_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"GRANT#{user_id}#{path_part_id}"}


def _key_of(permission: Permission) -> dict[str, str]:
    return _grant_key(permission.tenant_id, permission.user_id, permission.path_part_id)


def _grant_item(permission: Permission) -> dict[str, Any]:
    return {**_key_of(permission), **permission.model_dump(mode="json")}


def _pointer_item(permission: Permission) -> dict[str, Any]:
    return {**_pointer_key(permission.tenant_id, permission.id), "user_id": permission.user_id,
            "path_part_id": permission.path_part_id}


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only an OWNER or ADMIN can manage permissions")


def _require_path_part(principal: Principal, path_part_id: str) -> knowledge.PathPart:
    part = knowledge.get_path_part(principal.tenant_id, path_part_id)
    if part is None:
        raise NotFound("Path part not found")
    return part


def _pair_taken(tenant_id: str, user_id: str, path_part_id: str) -> Conflict:
    existing = _table().get_item(Key=_grant_key(tenant_id, user_id, path_part_id), ConsistentRead=True).get("Item")
    named = f" (permission {existing['id']})" if existing else ""
    return Conflict(f"The user already has a permission on this path part{named}; update that one instead")


def _transact(items: list[dict[str, Any]], permission: Permission, pair_item: int | None = None,
              part_item: int | None = None) -> None:
    """Write `items` all or nothing. A failed condition on item `pair_item` means the pair already has
    a grant (409); on `part_item`, that the path part is gone or being deleted (404); on any other
    item, that the permission was revoked meanwhile (404)."""
    try:
        _table().meta.client.transact_write_items(TransactItems=items)
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        failed = aws.failed_conditions(error)
        if part_item is not None and part_item in failed:
            raise NotFound("Path part not found") from error
        if pair_item is not None and pair_item in failed:
            raise _pair_taken(permission.tenant_id, permission.user_id, permission.path_part_id) from error
        if not failed:  # another transaction on the same items won the race
            raise Conflict("The permission was being changed by another request; try again") from error
        raise NotFound("Permission not found") from error


def list_for_user(principal: Principal, user_id: str) -> list[Permission]:
    """A user's grants, oldest first; USERs may list only their own."""
    if not principal.is_admin and user_id != principal.user_id:
        raise NotFound("User not found")
    items = _table().query(
        KeyConditionExpression=Key("pk").eq(_pk(principal.tenant_id)) & Key("sk").begins_with(f"GRANT#{user_id}#")
    )["Items"]
    return sorted((Permission.model_validate(item) for item in items), key=lambda p: (p.created_at, p.id))


def create(principal: Principal, user_id: str, path_part_id: str, capability: Capability) -> Permission:
    """A new grant; 409 if the user already has one on this path part."""
    _require_admin(principal)
    if identity.get_user(principal.tenant_id, user_id) is None:
        raise NotFound("User not found")
    part = _require_path_part(principal, path_part_id)
    now = clock.now()
    permission = Permission(id=str(uuid.uuid4()), tenant_id=principal.tenant_id, user_id=user_id,
                            path_part_id=path_part_id, capability=capability, created_at=now, updated_at=now)
    table_name = settings().table_name
    _transact([
        {"Put": {"TableName": table_name, "Item": _grant_item(permission),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": table_name, "Item": _pointer_item(permission),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        knowledge.open_part_check(part),
    ], permission, pair_item=0, part_item=2)
    return permission


def get(principal: Principal, permission_id: str) -> Permission:
    pointer = _table().get_item(Key=_pointer_key(principal.tenant_id, permission_id)).get("Item")
    if pointer is None or (not principal.is_admin and pointer["user_id"] != principal.user_id):
        raise NotFound("Permission not found")
    grant_key = _grant_key(principal.tenant_id, pointer["user_id"], pointer["path_part_id"])
    item = _table().get_item(Key=grant_key).get("Item")
    if item is None or item["id"] != permission_id:
        raise NotFound("Permission not found")
    return Permission.model_validate(item)


def _is_this_grant(permission: Permission) -> dict[str, Any]:
    """Condition on the pair's grant still being `permission` (not revoked, nor revoked and granted anew)."""
    return {"ConditionExpression": "#id = :id", "ExpressionAttributeNames": {"#id": "id"},
            "ExpressionAttributeValues": {":id": permission.id}}


def update(principal: Principal, permission_id: str, path_part_id: str | None,
           capability: Capability | None) -> Permission:
    """Change the capability or move the grant; moving onto a pair that has a grant is 409."""
    _require_admin(principal)
    permission = get(principal, permission_id)
    target = _require_path_part(principal, path_part_id) if path_part_id is not None else None
    changed = permission.model_copy(update={
        "path_part_id": path_part_id or permission.path_part_id,
        "capability": capability or permission.capability,
        "updated_at": clock.now(),
    })
    table_name = settings().table_name
    if changed.path_part_id == permission.path_part_id:
        _transact([{"Put": {"TableName": table_name, "Item": _grant_item(changed), **_is_this_grant(permission)}}],
                  changed)
        return changed
    _transact([
        {"Delete": {"TableName": table_name, "Key": _key_of(permission), **_is_this_grant(permission)}},
        {"Put": {"TableName": table_name, "Item": _grant_item(changed),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": table_name, "Item": _pointer_item(changed),
                 "ConditionExpression": "attribute_exists(pk)"}},
        *([knowledge.open_part_check(target)] if target is not None else []),
    ], changed, pair_item=1, part_item=3)
    return changed


def delete(principal: Principal, permission_id: str) -> None:
    _require_admin(principal)
    permission = get(principal, permission_id)
    table_name = settings().table_name
    _transact([
        {"Delete": {"TableName": table_name, "Key": _key_of(permission), **_is_this_grant(permission)}},
        {"Delete": {"TableName": table_name, "Key": _pointer_key(principal.tenant_id, permission_id)}},
    ], permission)


def delete_for_path_parts(tenant_id: str, path_part_ids: set[str]) -> None:
    """Drop the grants on path parts that are being deleted, so none points at a part that is gone."""
    items = _table().query(
        KeyConditionExpression=Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with("GRANT#"))["Items"]
    with _table().batch_writer() as batch:
        for item in items:
            if item["path_part_id"] in path_part_ids:
                permission = Permission.model_validate(item)
                batch.delete_item(Key=_key_of(permission))
                batch.delete_item(Key=_pointer_key(tenant_id, permission.id))
