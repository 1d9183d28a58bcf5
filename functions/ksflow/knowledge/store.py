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
- `LISTED#{parent_id}#{part type}#{N|C|U}#...`: a child's entry in one listing order (name,
  created, updated), per part type, so a page of any order and kind is one short query. Entries
  are written and removed in the same transactions as the child, and so are the parent's counts
  `children_{part type}`. A part stored before entries existed lacks `children_listed`: its
  children are indexed once, on its first listing (`index_children`).
- `GRANT#{user_id}#{path_part_id}`: a USER's capability on a subtree.

A delete marks every folder and document of the subtree `deleting` before it removes
anything, and every create checks, in its own transaction, that its parent exists and is not
marked: nothing can be added to a subtree once its delete has walked it (see `fence`). A part
being deleted, or under one being deleted, reads as absent.
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
LISTED = "children_listed"
# Children indexed per transaction when a part stored before listing entries is first listed: each
# takes its three entries and a check that it is unchanged (DynamoDB's limit is 100 actions).
_INDEXED_PER_TRANSACTION = 25


class Capability(StrEnum):
    READ_ONLY = "READ_ONLY"
    READ_WRITE = "READ_WRITE"


class ListingOrder(StrEnum):
    """The orders children are indexed in: NAME and CREATED ascending, UPDATED read backwards (newest first)."""

    NAME = "N"
    CREATED = "C"
    UPDATED = "U"


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _path_part_key(tenant_id: str, path_part_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"PATHPART#{path_part_id}"}


def _path_part_item(part: PathPart) -> dict[str, Any]:
    """A new part keeps listing entries and counts of its children from the start."""
    return {**_path_part_key(part.tenant_id, part.path_part_id), **part.model_dump(mode="json"), LISTED: True}


def _object_key(part: PathPart) -> dict[str, str]:
    return {"pk": _pk(part.tenant_id), "sk": f"OBJECT#{part.metadata_obj_id}"}


def _object_item(part: PathPart) -> dict[str, Any]:
    return {**_object_key(part), "path_part_id": part.path_part_id, "part_type": part.part_type.value}


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


def name_order(name: str) -> tuple[str, str]:
    """The API's NAME order among siblings: case-insensitive first, then the exact name."""
    return name.casefold(), name


def name_is_cut(name: str) -> bool:
    """Whether `name_key` holds only part of the case-folded name (then keys may misorder it)."""
    return len(name.casefold().encode()) > NAME_KEY_PREFIX_BYTES


def _child_name_key(tenant_id: str, parent_id: str | None, name: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"CHILDNAME#{parent_id}#{name_key(name)}"}


def _name_claim_key(part: PathPart) -> dict[str, str]:
    return _child_name_key(part.tenant_id, part.parent_id, part.name)


def _name_claim_item(part: PathPart) -> dict[str, Any]:
    return {**_name_claim_key(part), "path_part_id": part.path_part_id}


def count_attribute(part_type: PartType) -> str:
    """The parent's attribute that counts its children of one part type."""
    return f"children_{part_type.value}"


def listed_prefix(parent_id: str, part_type: PartType, order: ListingOrder) -> str:
    return f"LISTED#{parent_id}#{part_type.value}#{order.value}#"


def _listed_keys(part: PathPart, updated_at: datetime | None = None) -> list[dict[str, str]]:
    """A child's entry keys, NAME first; `updated_at` stands in for the part's own (a document's new version)."""
    def key(order: ListingOrder, suffix: str) -> dict[str, str]:
        return {"pk": _pk(part.tenant_id), "sk": listed_prefix(str(part.parent_id), part.part_type, order) + suffix}
    return [key(ListingOrder.NAME, name_key(part.name)),
            key(ListingOrder.CREATED, f"{clock.iso(part.created_at)}#{part.path_part_id}"),
            key(ListingOrder.UPDATED, f"{clock.iso(updated_at or part.updated_at)}#{part.path_part_id}")]


def _listed_items(part: PathPart) -> list[dict[str, Any]]:
    """Name entries carry the name: names that share a key prefix are ordered by it."""
    name_entry, *time_entries = _listed_keys(part)
    return [{**name_entry, "path_part_id": part.path_part_id, "name": part.name},
            *({**key, "path_part_id": part.path_part_id} for key in time_entries)]


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
    """A part being deleted is gone for its readers already."""
    return PathPart.model_validate(item) if item and "deleting" not in item else None


def _under_deletion(part: PathPart) -> bool:
    """Whether an ancestor is being deleted: one batched read of the lineage (root first, at most 51 parts)."""
    if not part.ancestor_ids:
        return False
    keys = [_path_part_key(part.tenant_id, pp) for pp in part.ancestor_ids]
    ancestors = aws.batch_get(_table(), keys, consistent=True)
    return len(ancestors) < len(keys) or any("deleting" in item for item in ancestors)


def _alive(part: PathPart | None) -> PathPart | None:
    """Creates under a deep descendant of a deleted part are 404 at once, as gets of it are.

    A create that passes this check while the delete starts commits only if its parent is not
    marked yet, and then the delete's walk finds the new part (see `fence`) and removes it.
    """
    return None if part is None or _under_deletion(part) else part


def get_path_part(tenant_id: str, path_part_id: str) -> PathPart | None:
    item = _table().get_item(Key=_path_part_key(tenant_id, path_part_id), ConsistentRead=True).get("Item")
    return _alive(_from_item(item))


def child_named(parent: PathPart, name: str) -> PathPart | None:
    """The folder or document that holds `name` under `parent`, found through its name claim."""
    claim = _table().get_item(Key=_child_name_key(parent.tenant_id, parent.path_part_id, name),
                              ConsistentRead=True).get("Item")
    return get_path_part(parent.tenant_id, claim["path_part_id"]) if claim else None


def _batch_get(tenant_id: str, sort_keys: Iterable[str]) -> list[dict[str, Any]]:
    """Items of the tenant partition, read consistently in as few requests as DynamoDB allows."""
    return aws.batch_get(_table(), [{"pk": _pk(tenant_id), "sk": sk} for sk in sort_keys], consistent=True)


def get_path_parts(tenant_id: str, path_part_ids: Iterable[str], *, deleting: bool = False) -> dict[str, PathPart]:
    """Parts by id; `deleting`: also those being deleted (the delete's own walk)."""
    items = _batch_get(tenant_id, (f"PATHPART#{pp}" for pp in path_part_ids))
    parts = (PathPart.model_validate(item) for item in items if deleting or "deleting" not in item)
    return {part.path_part_id: part for part in parts}


def get_by_object_ids(tenant_id: str, object_ids: Iterable[str]) -> dict[str, PathPart]:
    """Folders, documents or versions by the ids clients see for them (two batched reads)."""
    pointers = _batch_get(tenant_id, (f"OBJECT#{object_id}" for object_id in object_ids))
    parts = get_path_parts(tenant_id, [pointer["path_part_id"] for pointer in pointers])
    return {part.metadata_obj_id: part for part in parts.values()}


def child_claims(tenant_id: str, parent_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The name claims of a part's direct children (keys and `path_part_id`), read consistently: a delete
    must see every child committed before it fenced the parent."""
    query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(_pk(tenant_id))
                             & Key("sk").begins_with(f"CHILDNAME#{parent_id}#"),
                             "ProjectionExpression": "pk, sk, path_part_id", "ConsistentRead": True}
    return aws.query(_table(), query, limit)


def children(tenant_id: str, parent_ids: Sequence[str]) -> list[PathPart]:
    """The direct children of the given parts, read through their name claims."""
    ids = [claim["path_part_id"] for parent_id in parent_ids for claim in child_claims(tenant_id, parent_id)]
    return list(get_path_parts(tenant_id, ids).values())


def containers(parts: Iterable[PathPart]) -> list[PathPart]:
    """The parts that can have children: folders and documents (versions are leaves)."""
    return [p for p in parts if p.part_type != PartType.DOCUMENT_VERSION]


def descendants(part: PathPart, max_depth: int | None = None, kinds: set[PartType] | None = None) -> list[PathPart]:
    """Everything under a part, level by level (one query per part with children, batched reads).

    `kinds` limits the walk to parts of those types (and what lies under them)."""
    found: list[PathPart] = []
    level, depth = [part], 0
    while level and (max_depth is None or depth < max_depth):
        level = [p for p in children(part.tenant_id, [p.path_part_id for p in containers(level)])
                 if kinds is None or p.part_type in kinds]
        found.extend(level)
        depth += 1
    return found


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


def _counting_child(parent: PathPart, part_type: PartType) -> dict[str, Any]:
    """`open_part_check` that also counts the new child on its parent."""
    return {"Update": {"TableName": settings().table_name,
                       "Key": _path_part_key(parent.tenant_id, parent.path_part_id),
                       "UpdateExpression": "ADD #count :one", "ConditionExpression": OPEN_PARENT,
                       "ExpressionAttributeNames": {"#count": count_attribute(part_type)},
                       "ExpressionAttributeValues": {":one": 1}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}


def _write(parts: list[PathPart], parent_op: dict[str, Any], gone: str, conflict: str,
           also: Sequence[dict[str, Any]] = ()) -> None:
    """New parts with their pointers, name claims and listing entries, plus `also` (transaction items),
    all or nothing.

    `parent_op` acts on the new parts' parent (counting the first part) and fails when the parent is
    gone or being deleted: then the create is 404 (`gone`), as if the delete had already finished.
    Anything else is `conflict`. A new part that is the parent of another counts it in its own item.
    """
    counted = {p.path_part_id: _path_part_item(p) for p in parts}
    for part in parts:
        if part.parent_id in counted:
            attribute = count_attribute(part.part_type)
            counted[part.parent_id][attribute] = counted[part.parent_id].get(attribute, 0) + 1
    items = [*counted.values(), *(_object_item(p) for p in parts)]
    items += [item for p in parts if p.parent_id is not None for item in (_name_claim_item(p), *_listed_items(p))]
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
    _write([folder], _counting_child(parent, PartType.FOLDER), PARENT_GONE, _name_taken(name))
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
    _write([document, version], _counting_child(parent, PartType.DOCUMENT), PARENT_GONE, _name_taken(document.name),
           also)


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


def _moved_updated_entry(document: PathPart, updated_at: datetime) -> list[dict[str, Any]]:
    """Transaction items that move the document's UPDATED entry under its folder to its new time."""
    old, new = _listed_keys(document)[2], _listed_keys(document, updated_at)[2]
    if old == new:
        return []
    table_name = settings().table_name
    return [{"Delete": {"TableName": table_name, "Key": old}},
            {"Put": {"TableName": table_name, "Item": {**new, "path_part_id": document.path_part_id}}}]


def store_version(document: PathPart, version: PathPart, document_type: DocumentType,
                  also: Sequence[dict[str, Any]] = ()) -> PathPart:
    """Store a new version and make it the document's active one, unless another upload got there first.

    The document's `updated_at` changes, so its UPDATED listing entry moves in the same transaction.
    """
    activate = {"Update": {
        "TableName": settings().table_name, "Key": _path_part_key(document.tenant_id, document.path_part_id),
        "UpdateExpression": "SET active_version_id = :new, updated_at = :now, document_type = :type ADD #count :one",
        "ConditionExpression": f"{OPEN_PARENT} AND active_version_id = :current",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeNames": {"#count": count_attribute(PartType.DOCUMENT_VERSION)},
        "ExpressionAttributeValues": {":new": version.metadata_obj_id, ":current": document.active_version_id,
                                      ":now": clock.iso(version.created_at), ":type": document_type.value,
                                      ":one": 1},
    }}
    _write([version], activate, "Document not found", "Another version of this document was uploaded meanwhile; retry",
           [*_moved_updated_entry(document, version.created_at), *also])
    return document.model_copy(update={"active_version_id": version.metadata_obj_id,
                                       "updated_at": version.created_at, "document_type": document_type})


# --- Listings ---

def listing_state(part: PathPart) -> dict[str, Any]:
    """The part's children counts and whether its children are indexed (`LISTED`), read consistently;
    empty if the part is gone."""
    names = {f"#a{i}": name for i, name in enumerate(["pk", LISTED, *(count_attribute(t) for t in PartType)])}
    item = _table().get_item(Key=_path_part_key(part.tenant_id, part.path_part_id), ConsistentRead=True,
                             ProjectionExpression=", ".join(names), ExpressionAttributeNames=names).get("Item")
    return item or {}


def children_count(state: dict[str, Any], part_types: Iterable[PartType]) -> int:
    return sum(int(state.get(count_attribute(t), 0)) for t in part_types)


def listed_entries(tenant_id: str, prefix: str, count: int | None, *, forward: bool = True,
                   after: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Up to `count` listing entries under a key prefix, in key order (backwards unless `forward`)."""
    query: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with(prefix),
                             "ScanIndexForward": forward}
    if after is not None:
        query["ExclusiveStartKey"] = {"pk": after["pk"], "sk": after["sk"]}
    return aws.query(_table(), query, count)


def _index_batch(items: Sequence[dict[str, Any]]) -> bool:
    """Entries of children that exist unchanged (as read); False when one changed or went meanwhile."""
    table_name = settings().table_name
    actions: list[dict[str, Any]] = []
    for item in items:
        actions.append({"ConditionCheck": {
            "TableName": table_name, "Key": {"pk": item["pk"], "sk": item["sk"]},
            "ConditionExpression": "updated_at = :seen AND attribute_not_exists(deleting)",
            "ExpressionAttributeValues": {":seen": item["updated_at"]}}})
        actions.extend({"Put": {"TableName": table_name, "Item": entry}}
                       for entry in _listed_items(PathPart.model_validate(item)))
    try:
        _table().meta.client.transact_write_items(TransactItems=actions)
    except ClientError as error:
        if not aws.failed_conditions(error):
            raise
        return False
    return True


def index_children(part: PathPart, attempts: int = 5) -> bool:
    """Give a part stored before listing entries existed its children's entries and counts, once.

    The counts are set only if they are still what was read before the children were: a create or
    delete meanwhile (each ADDs to them) makes this start again, and so does a child that changed
    while its entries were written. Two listings may index at once: entries are the same items, and
    only one sets the counts. False if the part kept changing: the caller lists it the old way.
    """
    for _ in range(attempts):
        state = listing_state(part)
        if not state or state.get(LISTED):
            return bool(state)
        claims = child_claims(part.tenant_id, part.path_part_id)
        kids = [i for i in _batch_get(part.tenant_id, (f"PATHPART#{c['path_part_id']}" for c in claims))
                if "deleting" not in i]
        batches = [kids[i:i + _INDEXED_PER_TRANSACTION] for i in range(0, len(kids), _INDEXED_PER_TRANSACTION)]
        if not all([_index_batch(batch) for batch in batches]):
            continue
        counts = {count_attribute(t): sum(1 for k in kids if k["part_type"] == t.value) for t in PartType}
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(counts.values())}
        unchanged = [f"attribute_not_exists(#c{i})" if name not in state else f"#c{i} = :was{i}"
                     for i, name in enumerate(counts)]
        values.update({f":was{i}": state[name] for i, name in enumerate(counts) if name in state})
        try:
            _table().update_item(
                Key=_path_part_key(part.tenant_id, part.path_part_id),
                UpdateExpression="SET #listed = :yes, " + ", ".join(f"#c{i} = :c{i}" for i in range(len(counts))),
                ConditionExpression=" AND ".join(["attribute_exists(pk)", "attribute_not_exists(#listed)",
                                                  *unchanged]),
                ExpressionAttributeNames={**names, "#listed": LISTED}, ExpressionAttributeValues={**values,
                                                                                                  ":yes": True})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            continue
        return True
    return bool(listing_state(part).get(LISTED))


# --- Deletes ---

def detach(part: PathPart) -> None:
    """Take a part out of its parent at once: mark it `deleting`, drop its name claim and listing entries
    and its parent's count of it, all or nothing. A second delete of the same part is 404."""
    assert part.parent_id is not None
    table_name = settings().table_name
    try:
        _table().meta.client.transact_write_items(TransactItems=[
            {"Update": {"TableName": table_name, "Key": _path_part_key(part.tenant_id, part.path_part_id),
                        "UpdateExpression": "SET deleting = :yes", "ConditionExpression": OPEN_PARENT,
                        "ExpressionAttributeValues": {":yes": True}}},
            {"Update": {"TableName": table_name, "Key": _path_part_key(part.tenant_id, part.parent_id),
                        "UpdateExpression": "ADD #count :minus", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#count": count_attribute(part.part_type)},
                        "ExpressionAttributeValues": {":minus": -1}}},
            {"Delete": {"TableName": table_name, "Key": _name_claim_key(part)}},
            *({"Delete": {"TableName": table_name, "Key": key}} for key in _listed_keys(part)),
        ])
    except ClientError as error:
        if not aws.failed_conditions(error):
            raise
        raise NotFound(f"{part.part_type.value.replace('_', ' ').capitalize()} not found") from error


def fence(parts: Iterable[PathPart]) -> None:
    """Mark folders and documents `deleting` before their children are read: a create that committed before
    is among the children read next, and one that comes later fails its check on the parent. A part
    already gone stays gone (no stub item)."""
    for part in containers(parts):
        try:
            _table().update_item(Key=_path_part_key(part.tenant_id, part.path_part_id),
                                 UpdateExpression="SET deleting = :yes", ConditionExpression="attribute_exists(pk)",
                                 ExpressionAttributeValues={":yes": True})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def remove(parts: Sequence[PathPart]) -> None:
    """Remove parts whose children are gone: entries, pointers and items first, name claims last.

    The claims are how a delete finds parts, so a removal cut short is found and finished again
    (a claim whose part is gone is all that can be left, see `drop_claims`).
    """
    with _table().batch_writer() as batch:
        for part in parts:
            if part.parent_id is not None:
                for key in _listed_keys(part):
                    batch.delete_item(Key=key)
            batch.delete_item(Key=_object_key(part))
            batch.delete_item(Key=_path_part_key(part.tenant_id, part.path_part_id))
    drop_claims(parts)


def drop_claims(parts: Iterable[PathPart]) -> None:
    with _table().batch_writer() as batch:
        for part in parts:
            if part.parent_id is not None:
                batch.delete_item(Key=_name_claim_key(part))


def drop_claim_items(claims: Iterable[dict[str, Any]]) -> None:
    """Claims left by a removal cut short after their parts went (see `remove`)."""
    with _table().batch_writer() as batch:
        for claim in claims:
            batch.delete_item(Key={"pk": claim["pk"], "sk": claim["sk"]})


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
