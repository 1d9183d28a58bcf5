"""Path part items and the access rules over them.

Items (single table, partition `TENANT#{tenant_id}`):
- `PATHPART#{path_part_id}`: a folder, document or document version (`PathPart`).
- `OBJECT#{object_id}`: the folder/document/version id a client sees, pointing at its path part.
- `CHILDNAME#{parent_id}#{name key}`: claims a name under a parent, so sibling names are
  unique and materialized paths unambiguous; it is also the index of a part's children
  (folders and documents under a folder, versions `v0`, `v1`, ... under a document). The name
  key is the case-folded name cut to `NAME_KEY_PREFIX_BYTES`, then a hash of the exact name
  (see `name_key`): no name reaches DynamoDB's 1,024-byte sort key limit, and claims still
  sort in the API's NAME order.
- `GRANT#{user_id}#{path_part_id}`: a USER's capability on a subtree.

A delete marks every folder and document of the subtree `deleting` before it removes
anything, and every create checks, in its own transaction, that its parent exists and is not
marked: nothing can be added to a subtree once its delete has walked it (see `fence_subtree`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.errors import Conflict, Invalid, NotFound
from ksflow.identity.models import Principal
from ksflow.knowledge.models import DocumentOrigin, DocumentType, PartType, PathPart

ROOT_NAME = "/"
NAME_KEY_PREFIX_BYTES = 512
OPEN_PARENT = "attribute_exists(pk) AND attribute_not_exists(deleting)"
PARENT_GONE = "Parent folder not found"


class Capability(StrEnum):
    READ_ONLY = "READ_ONLY"
    READ_WRITE = "READ_WRITE"


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _path_part_key(tenant_id: str, path_part_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"PATHPART#{path_part_id}"}


def _path_part_item(part: PathPart) -> dict[str, Any]:
    return {**_path_part_key(part.tenant_id, part.path_part_id), **part.model_dump(mode="json")}


def _object_item(part: PathPart) -> dict[str, Any]:
    return {"pk": _pk(part.tenant_id), "sk": f"OBJECT#{part.metadata_obj_id}",
            "path_part_id": part.path_part_id, "part_type": part.part_type.value}


def name_key(name: str) -> str:
    """`prefix + hash`: the case-folded name's first bytes (cut at a character boundary), a NUL,
    then a hash of the exact name.

    Keys order like the API's NAME order (case-insensitive first) wherever the prefixes differ,
    so listings in name order can be read from keys; only names that share a whole prefix (or
    differ only in case) need ordering by the name itself. NUL sorts below every character a
    name may hold, so a name sorts before its own extensions. Distinct names never share a key,
    and the longest key stays far below DynamoDB's 1,024-byte sort key limit.
    """
    prefix = name.casefold().encode()[:NAME_KEY_PREFIX_BYTES].decode(errors="ignore")
    return f"{prefix}\x00{hashlib.sha256(name.encode()).hexdigest()}"


def _child_name_key(tenant_id: str, parent_id: str | None, name: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"CHILDNAME#{parent_id}#{name_key(name)}"}


def _name_claim_key(part: PathPart) -> dict[str, str]:
    return _child_name_key(part.tenant_id, part.parent_id, part.name)


def _name_claim_item(part: PathPart) -> dict[str, Any]:
    return {**_name_claim_key(part), "path_part_id": part.path_part_id}


# Folders and documents nest at most this deep below the root. It bounds every path, and so the
# largest run snapshot (61 paths) and its response, whatever the names' characters.
MAX_DEPTH = 50


def _new_part(parent: PathPart, part_type: PartType, name: str, user_id: str, now: datetime,
              **fields: Any) -> PathPart:
    if part_type != PartType.DOCUMENT_VERSION and len(parent.lineage) > MAX_DEPTH:
        raise Invalid(["body"], f"Folders and documents nest at most {MAX_DEPTH} levels below the root folder",
                      "path.too_deep")
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
    return _from_item(_table().get_item(Key=_path_part_key(tenant_id, path_part_id)).get("Item"))


def child_named(parent: PathPart, name: str) -> PathPart | None:
    """The folder or document that holds `name` under `parent`, found through its name claim."""
    claim = _table().get_item(Key=_child_name_key(parent.tenant_id, parent.path_part_id, name),
                              ConsistentRead=True).get("Item")
    return get_path_part(parent.tenant_id, claim["path_part_id"]) if claim else None


def _batch_get(tenant_id: str, sort_keys: Iterable[str]) -> list[dict[str, Any]]:
    """Items of the tenant partition, read consistently in as few requests as DynamoDB allows."""
    return aws.batch_get(_table(), [{"pk": _pk(tenant_id), "sk": sk} for sk in sort_keys], consistent=True)


def get_path_parts(tenant_id: str, path_part_ids: Iterable[str]) -> dict[str, PathPart]:
    items = _batch_get(tenant_id, (f"PATHPART#{pp}" for pp in path_part_ids))
    parts = (PathPart.model_validate(item) for item in items)
    return {part.path_part_id: part for part in parts}


def get_by_object_ids(tenant_id: str, object_ids: Iterable[str]) -> dict[str, PathPart]:
    """Folders, documents or versions by the ids clients see for them (two batched reads)."""
    pointers = _batch_get(tenant_id, (f"OBJECT#{object_id}" for object_id in object_ids))
    parts = get_path_parts(tenant_id, [pointer["path_part_id"] for pointer in pointers])
    return {part.metadata_obj_id: part for part in parts.values()}


def children(tenant_id: str, parent_ids: Sequence[str]) -> list[PathPart]:
    """The direct children of the given parts, read through their name claims.

    Reads are strongly consistent: a delete must see every child committed before it fenced the parent.
    """
    path_part_ids: list[str] = []
    for parent_id in parent_ids:
        query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(_pk(tenant_id))
                                 & Key("sk").begins_with(f"CHILDNAME#{parent_id}#"),
                                 "ProjectionExpression": "path_part_id", "ConsistentRead": True}
        path_part_ids.extend(item["path_part_id"] for item in aws.query(_table(), query))
    return list(get_path_parts(tenant_id, path_part_ids).values())


def _containers(parts: Iterable[PathPart]) -> list[PathPart]:
    """The parts that can have children: folders and documents (versions are leaves)."""
    return [p for p in parts if p.part_type != PartType.DOCUMENT_VERSION]


def descendants(part: PathPart, max_depth: int | None = None) -> list[PathPart]:
    """Everything under a part, level by level (one query per part with children, batched reads)."""
    found: list[PathPart] = []
    level, depth = [part], 0
    while level and (max_depth is None or depth < max_depth):
        level = children(part.tenant_id, [p.path_part_id for p in _containers(level)])
        found.extend(level)
        depth += 1
    return found


def _mark_deleting(part: PathPart) -> None:
    """Creates under the part fail from now on; a part already gone stays gone (no stub item)."""
    try:
        _table().update_item(Key=_path_part_key(part.tenant_id, part.path_part_id),
                             UpdateExpression="SET deleting = :yes", ConditionExpression="attribute_exists(pk)",
                             ExpressionAttributeValues={":yes": True})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def fence_subtree(part: PathPart) -> list[PathPart]:
    """Mark the part and every folder and document under it as being deleted, top down; return the subtree.

    Each level is marked before its children are read. A create that committed before its parent
    was marked is among the children read next (and is marked in turn); one that comes later fails
    its check on the parent. So once this returns, the subtree it returns is all there will ever be.
    """
    found: list[PathPart] = []
    level = [part]
    while level:
        containers = _containers(level)
        for container in containers:
            _mark_deleting(container)
        found.extend(level)
        level = children(part.tenant_id, [p.path_part_id for p in containers])
    return found


def delete_parts(parts: Sequence[PathPart]) -> None:
    """Remove path parts with their object pointers and name claims (deepest first)."""
    with _table().batch_writer() as batch:
        for part in sorted(parts, key=lambda p: len(p.ancestor_ids), reverse=True):
            batch.delete_item(Key=_path_part_key(part.tenant_id, part.path_part_id))
            batch.delete_item(Key={"pk": _pk(part.tenant_id), "sk": f"OBJECT#{part.metadata_obj_id}"})
            if part.parent_id is not None:
                batch.delete_item(Key=_name_claim_key(part))


def get_by_object_id(tenant_id: str, object_id: str, part_type: PartType) -> PathPart | None:
    """A folder, document or version by the id clients see for it."""
    pointer = _table().get_item(Key={"pk": _pk(tenant_id), "sk": f"OBJECT#{object_id}"}).get("Item")
    if not pointer or pointer["part_type"] != part_type.value:
        return None
    return get_path_part(tenant_id, pointer["path_part_id"])


def open_part_check(parent: PathPart) -> dict[str, Any]:
    """The transaction item that fails when the part is gone or being deleted.

    Whatever is written under or about a part (children, versions, grants) carries it, so
    nothing survives a delete that is walking the part's subtree.
    """
    return {"ConditionCheck": {"TableName": settings().table_name,
                               "Key": _path_part_key(parent.tenant_id, parent.path_part_id),
                               "ConditionExpression": OPEN_PARENT, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}


def _write(parts: list[PathPart], parent_op: dict[str, Any], gone: str, conflict: str,
           also: Sequence[dict[str, Any]] = ()) -> None:
    """New parts with their pointers and name claims, plus `also` (transaction items), all or nothing.

    `parent_op` acts on the new parts' parent and fails when the parent is gone or being deleted:
    then the create is 404 (`gone`), as if the delete had already finished. Anything else is `conflict`.
    """
    items = [_path_part_item(p) for p in parts] + [_object_item(p) for p in parts]
    items += [_name_claim_item(p) for p in parts if p.parent_id is not None]
    table = _table()
    try:
        table.meta.client.transact_write_items(TransactItems=[
            parent_op,
            *({"Put": {"TableName": table.name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
              for item in items),
            *also,
        ])
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reason = (error.response.get("CancellationReasons") or [{}])[0]
        parent_item = reason.get("Item")
        if reason.get("Code") == "ConditionalCheckFailed" and (parent_item is None or "deleting" in parent_item):
            raise NotFound(gone) from error
        raise Conflict(conflict) from error


def _name_taken(name: str) -> str:
    return f"A path part named {name!r} already exists in this folder"


def create_folder(principal: Principal, parent: PathPart, name: str) -> PathPart:
    folder = _new_part(parent, PartType.FOLDER, name, principal.user_id, clock.now())
    _write([folder], open_part_check(parent), PARENT_GONE, _name_taken(name))
    return folder


def new_document(principal: Principal, parent: PathPart, name: str, document_type: DocumentType,
                 document_origin: DocumentOrigin) -> tuple[PathPart, PathPart]:
    """A document and its first version, v0, not stored yet (a document always has an active version)."""
    now = clock.now()
    document = _new_part(parent, PartType.DOCUMENT, name, principal.user_id, now,
                         document_type=document_type, document_origin=document_origin)
    version = _new_part(document, PartType.DOCUMENT_VERSION, "v0", principal.user_id, now, version=0)
    return document.model_copy(update={"active_version_id": version.metadata_obj_id}), version


def store_document(parent: PathPart, document: PathPart, version: PathPart,
                   also: Sequence[dict[str, Any]] = ()) -> None:
    _write([document, version], open_part_check(parent), PARENT_GONE, _name_taken(document.name), also)


def create_document(principal: Principal, parent: PathPart, name: str, document_type: DocumentType,
                    document_origin: DocumentOrigin) -> tuple[PathPart, PathPart]:
    """A metadata-only document at v0."""
    document, version = new_document(principal, parent, name, document_type, document_origin)
    store_document(parent, document, version)
    return document, version


def new_version(principal: Principal, document: PathPart, active_version: PathPart) -> PathPart:
    """The document's next version (one above the active one), not stored yet."""
    number = (active_version.version or 0) + 1
    return _new_part(document, PartType.DOCUMENT_VERSION, f"v{number}", principal.user_id, clock.now(),
                     version=number)


def store_version(document: PathPart, version: PathPart, document_type: DocumentType,
                  also: Sequence[dict[str, Any]] = ()) -> PathPart:
    """Store a new version and make it the document's active one, unless another upload got there first."""
    activate = {"Update": {
        "TableName": settings().table_name, "Key": _path_part_key(document.tenant_id, document.path_part_id),
        "UpdateExpression": "SET active_version_id = :new, updated_at = :now, document_type = :type",
        "ConditionExpression": f"{OPEN_PARENT} AND active_version_id = :current",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeValues": {":new": version.metadata_obj_id, ":current": document.active_version_id,
                                      ":now": clock.iso(version.created_at), ":type": document_type.value},
    }}
    _write([version], activate, "Document not found", "Another version of this document was uploaded meanwhile; retry",
           also)
    return document.model_copy(update={"active_version_id": version.metadata_obj_id,
                                       "updated_at": version.created_at, "document_type": document_type})


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

    def _capabilities(self, lineage: list[str]) -> set[Capability]:
        if self._grants is None:
            self._grants = grants(self.principal)
        return {self._grants[pp] for pp in lineage if pp in self._grants}

    def can_read_lineage(self, lineage: list[str]) -> bool:
        """For records that keep their path part's lineage (root first, the part last)."""
        return self.principal.is_admin or bool(self._capabilities(lineage))

    def can_read(self, part: PathPart) -> bool:
        return self.can_read_lineage(part.lineage)

    def can_write_lineage(self, lineage: list[str]) -> bool:
        return self.principal.is_admin or Capability.READ_WRITE in self._capabilities(lineage)

    def can_write(self, part: PathPart) -> bool:
        return self.can_write_lineage(part.lineage)
