"""Grants of a capability on a path part's subtree to a USER (`/v1/user-permissions`).

Items (partition `TENANT#{tenant_id}`):
- `GRANT#{user_id}#{permission_id}`: the grant; a user's grants are one query away, which is
  how `Access` reads them.
- `PERMISSION#{permission_id}`: points at the grant's user, so a permission id alone finds it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
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


def _grant_key(permission: Permission) -> dict[str, str]:
    return {"pk": _pk(permission.tenant_id), "sk": f"GRANT#{permission.user_id}#{permission.id}"}


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only an OWNER or ADMIN can manage permissions")


def _require_path_part(principal: Principal, path_part_id: str) -> knowledge.PathPart:
    part = knowledge.get_path_part(principal.tenant_id, path_part_id)
    if part is None:
        raise NotFound("Path part not found")
    return part


def list_for_user(principal: Principal, user_id: str) -> list[Permission]:
    """A user's grants, oldest first; USERs may list only their own."""
    if not principal.is_admin and user_id != principal.user_id:
        raise NotFound("User not found")
    items = _table().query(
        KeyConditionExpression=Key("pk").eq(_pk(principal.tenant_id)) & Key("sk").begins_with(f"GRANT#{user_id}#")
    )["Items"]
    return sorted((Permission.model_validate(item) for item in items), key=lambda p: (p.created_at, p.id))


def create(principal: Principal, user_id: str, path_part_id: str, capability: Capability) -> Permission:
    _require_admin(principal)
    if identity.get_user(principal.tenant_id, user_id) is None:
        raise NotFound("User not found")
    _require_path_part(principal, path_part_id)
    if any(p.path_part_id == path_part_id for p in list_for_user(principal, user_id)):
        raise Conflict("The user already has a permission on this path part; update it instead")
    now = clock.now()
    permission = Permission(id=str(uuid.uuid4()), tenant_id=principal.tenant_id, user_id=user_id,
                            path_part_id=path_part_id, capability=capability, created_at=now, updated_at=now)
    table = _table()
    table.meta.client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table.name, "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {**_grant_key(permission), **permission.model_dump(mode="json")}}},
        {"Put": {"TableName": table.name, "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {**_pointer_key(principal.tenant_id, permission.id), "user_id": user_id}}},
    ])
    return permission


def get(principal: Principal, permission_id: str) -> Permission:
    pointer = _table().get_item(Key=_pointer_key(principal.tenant_id, permission_id)).get("Item")
    if pointer is None or (not principal.is_admin and pointer["user_id"] != principal.user_id):
        raise NotFound("Permission not found")
    item = _table().get_item(
        Key={"pk": _pk(principal.tenant_id), "sk": f"GRANT#{pointer['user_id']}#{permission_id}"}
    ).get("Item")
    if item is None:
        raise NotFound("Permission not found")
    return Permission.model_validate(item)


def update(principal: Principal, permission_id: str, path_part_id: str | None,
           capability: Capability | None) -> Permission:
    _require_admin(principal)
    permission = get(principal, permission_id)
    if path_part_id is not None:
        _require_path_part(principal, path_part_id)
    changed = permission.model_copy(update={
        "path_part_id": path_part_id or permission.path_part_id,
        "capability": capability or permission.capability,
        "updated_at": clock.now(),
    })
    _table().put_item(Item={**_grant_key(changed), **changed.model_dump(mode="json")},
                      ConditionExpression="attribute_exists(pk)")
    return changed


def delete(principal: Principal, permission_id: str) -> None:
    _require_admin(principal)
    permission = get(principal, permission_id)
    table = _table()
    table.meta.client.transact_write_items(TransactItems=[
        {"Delete": {"TableName": table.name, "Key": _grant_key(permission)}},
        {"Delete": {"TableName": table.name, "Key": _pointer_key(principal.tenant_id, permission_id)}},
    ])


def delete_for_path_parts(tenant_id: str, path_part_ids: set[str]) -> None:
    """Drop the grants on path parts that are being deleted, so none points at a part that is gone."""
    items = _table().query(
        KeyConditionExpression=Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with("GRANT#"))["Items"]
    with _table().batch_writer() as batch:
        for item in items:
            if item["path_part_id"] in path_part_ids:
                permission = Permission.model_validate(item)
                batch.delete_item(Key=_grant_key(permission))
                batch.delete_item(Key=_pointer_key(tenant_id, permission.id))
