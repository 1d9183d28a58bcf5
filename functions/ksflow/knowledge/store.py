"""Path part items and the access rules over them.

Items (single table, partition `TENANT#{tenant_id}`):
- `PATHPART#{path_part_id}`: a folder, document or document version (`PathPart`).
- `OBJECT#{object_id}`: the folder/document/version id a client sees, pointing at its path part.
- `CHILDNAME#{parent_id}#{name}`: claims a name under a parent, so sibling names are unique
  and materialized paths unambiguous.
- `GRANT#{user_id}#{path_part_id}`: a USER's capability on a subtree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.errors import Conflict
from ksflow.identity.models import Principal
from ksflow.knowledge.models import DocumentOrigin, DocumentType, PartType, PathPart

ROOT_NAME = "/"


class Capability(StrEnum):
    READ_ONLY = "READ_ONLY"
    READ_WRITE = "READ_WRITE"


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _path_part_item(part: PathPart) -> dict[str, Any]:
    return {"pk": _pk(part.tenant_id), "sk": f"PATHPART#{part.path_part_id}", **part.model_dump(mode="json")}


def _object_item(part: PathPart) -> dict[str, Any]:
    return {"pk": _pk(part.tenant_id), "sk": f"OBJECT#{part.metadata_obj_id}",
            "path_part_id": part.path_part_id, "part_type": part.part_type.value}


def _name_claim_item(part: PathPart) -> dict[str, Any]:
    return {"pk": _pk(part.tenant_id), "sk": f"CHILDNAME#{part.parent_id}#{part.name}",
            "path_part_id": part.path_part_id}


def _new_part(parent: PathPart, part_type: PartType, name: str, user_id: str, now: datetime,
              **fields: Any) -> PathPart:
    path = f"{parent.materialized_path.rstrip('/')}/{name}"
    return PathPart(tenant_id=parent.tenant_id, path_part_id=str(uuid.uuid4()), part_type=part_type, name=name,
                    parent_id=parent.path_part_id, ancestor_ids=parent.lineage, materialized_path=path,
                    metadata_obj_id=str(uuid.uuid4()), system_managed=False, created_at=now, updated_at=now,
                    created_by=user_id, **fields)


def root_folder_items(tenant_id: str, user_id: str, now: str) -> tuple[list[dict[str, Any]], str]:
    """Items of a new tenant's root folder `/`, written with the tenant itself."""
    moment = clock.parse(now)
    root = PathPart(tenant_id=tenant_id, path_part_id=str(uuid.uuid4()), part_type=PartType.FOLDER,
                    name=ROOT_NAME, parent_id=None, ancestor_ids=[], materialized_path="/",
                    metadata_obj_id=str(uuid.uuid4()), system_managed=True, created_at=moment,
                    updated_at=moment, created_by=user_id)
    return [_path_part_item(root), _object_item(root)], root.path_part_id


def _from_item(item: dict[str, Any] | None) -> PathPart | None:
    return PathPart.model_validate(item) if item else None


def get_path_part(tenant_id: str, path_part_id: str) -> PathPart | None:
    return _from_item(_table().get_item(Key={"pk": _pk(tenant_id), "sk": f"PATHPART#{path_part_id}"}).get("Item"))


def get_path_parts(tenant_id: str, path_part_ids: list[str]) -> dict[str, PathPart]:
    """Many path parts in as few reads as DynamoDB allows (100 keys per batch)."""
    unique = list(dict.fromkeys(path_part_ids))
    found: dict[str, PathPart] = {}
    client = _table().meta.client
    name = settings().table_name
    for start in range(0, len(unique), 100):
        batch = unique[start:start + 100]
        keys: list[dict[str, Any]] = [{"pk": _pk(tenant_id), "sk": f"PATHPART#{pp}"} for pp in batch]
        request: dict[str, Any] = {name: {"Keys": keys}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(name, []):
                part = PathPart.model_validate(item)
                found[part.path_part_id] = part
            request = response.get("UnprocessedKeys") or {}
    return found


def get_by_object_id(tenant_id: str, object_id: str, part_type: PartType) -> PathPart | None:
    """A folder, document or version by the id clients see for it."""
    pointer = _table().get_item(Key={"pk": _pk(tenant_id), "sk": f"OBJECT#{object_id}"}).get("Item")
    if not pointer or pointer["part_type"] != part_type.value:
        return None
    return get_path_part(tenant_id, pointer["path_part_id"])


def _write_new(parts: list[PathPart], claim_names_of: list[PathPart]) -> None:
    items = [_path_part_item(p) for p in parts] + [_object_item(p) for p in parts]
    items += [_name_claim_item(p) for p in claim_names_of]
    table = _table()
    try:
        table.meta.client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table.name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
            for item in items
        ])
    except ClientError as error:
        if error.response["Error"]["Code"] == "TransactionCanceledException":
            names = ", ".join(p.name for p in claim_names_of)
            raise Conflict(f"A path part named {names!r} already exists in this folder") from error
        raise


def create_folder(principal: Principal, parent: PathPart, name: str) -> PathPart:
    folder = _new_part(parent, PartType.FOLDER, name, principal.user_id, clock.now())
    _write_new([folder], claim_names_of=[folder])
    return folder


def create_document(principal: Principal, parent: PathPart, name: str, document_type: DocumentType,
                    document_origin: DocumentOrigin) -> tuple[PathPart, PathPart]:
    """A document always has an active version; a metadata-only document starts at v0."""
    now = clock.now()
    document = _new_part(parent, PartType.DOCUMENT, name, principal.user_id, now,
                         document_type=document_type, document_origin=document_origin)
    version = _new_part(document, PartType.DOCUMENT_VERSION, "v0", principal.user_id, now, version=0)
    document = document.model_copy(update={"active_version_id": version.metadata_obj_id})
    _write_new([document, version], claim_names_of=[document])
    return document, version


def grants(principal: Principal) -> dict[str, Capability]:
    """A USER's grants: path part id -> capability over that subtree."""
    response = _table().query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": _pk(principal.tenant_id), ":prefix": f"GRANT#{principal.user_id}#"},
    )
    return {item["path_part_id"]: Capability(item["capability"]) for item in response["Items"]}


class Access:
    """What one principal may do with path parts; grants are read at most once per request."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._grants: dict[str, Capability] | None = None

    def _capabilities(self, part: PathPart) -> set[Capability]:
        if self._grants is None:
            self._grants = grants(self.principal)
        return {self._grants[pp] for pp in part.lineage if pp in self._grants}

    def can_read(self, part: PathPart) -> bool:
        return self.principal.is_admin or bool(self._capabilities(part))

    def can_write(self, part: PathPart) -> bool:
        return self.principal.is_admin or Capability.READ_WRITE in self._capabilities(part)
