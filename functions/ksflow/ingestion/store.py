"""Ingestion records and the chunks they produce.

Items (partition `TENANT#{tenant_id}`):
- `INGESTION#{document_version_id}`: the version's ingestion (`Ingestion`): status, attempt,
  the current execution's name, progress (`last_activity`, `chunks_processed`) and `error`;
  listed and counted in the same transactions that write and delete it (`listing`).
- Chunks, in partitions of their own so that one large file spreads its writes over many:
  `TENANT#{tenant_id}#CHUNKS#{document_version_id}#{block}` holds the chunks with indexes
  `block * 100` to `block * 100 + 99`, as `CHUNK#{index:09d}` (`text`, `start`/`end` offsets in the
  extracted text, `attempt` that wrote it, `chunk_id`). A page of chunks is one query, two when it
  crosses a block. An attempt overwrites chunks by index and, once done, deletes those past its own
  count up to the ingestion's `chunk_extent` (the highest index any attempt wrote, raised by the
  transaction that writes past it), so a completed ingestion's chunks are exactly its last
  attempt's, found without reading anything but the version's own blocks.
- `TENANT#{tenant_id}#CHUNKID#{chunk_id}`: points at the chunk with that id (`document_version_id`,
  `index`), so `/v1/chunks/{chunk_id}` is one Get away. Each pointer is written, and the one of the
  chunk it replaces deleted, in the same transaction as its chunk, so no pointer outlives its chunk.
- Ingestions completed before chunks had partitions of their own (no `chunk_layout` on the record)
  keep their chunks in the tenant's partition (`CHUNK#{document_version_id}#{index:06d}`, pointers
  `CHUNKID#{chunk_id}`). They are read there until a rerun completes: that rerun sets
  `chunk_layout` and deletes them. Deleting a version deletes the chunks of both layouts.

Every change a task makes is conditional on the ingestion still being open and still
belonging to the task's execution: a cancel or a newer rerun wins, and a late task of an
older execution changes nothing. Chunk writes are fenced the same way: each batch is one
transaction with a check on the ingestion record, so once an attempt is cancelled or
superseded none of its chunks can land, even while the next attempt writes its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from ksflow import aws, clock, observability
from ksflow.config import settings
from ksflow.ingestion import listing
from ksflow.ingestion.chunking import Chunk
from ksflow.ingestion.models import OPEN_STATUSES, Activity, Ingestion, IngestionStatus


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def key(tenant_id: str, document_version_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"INGESTION#{document_version_id}"}


# The chunk layout `complete` records; records without one have their chunks in the tenant partition.
CHUNK_LAYOUT = 2
CHUNKS_PER_PARTITION = 100


def _chunk_partition(tenant_id: str, document_version_id: str, block: int) -> str:
    return f"{_pk(tenant_id)}#CHUNKS#{document_version_id}#{block}"


def _chunk_sk(index: int) -> str:
    return f"CHUNK#{index:09d}"


def _chunk_key(tenant_id: str, document_version_id: str, index: int) -> dict[str, str]:
    return {"pk": _chunk_partition(tenant_id, document_version_id, index // CHUNKS_PER_PARTITION),
            "sk": _chunk_sk(index)}


def _chunk_pointer_key(tenant_id: str, chunk_id: str) -> dict[str, str]:
    return {"pk": f"{_pk(tenant_id)}#CHUNKID#{chunk_id}", "sk": "CHUNKID"}


def _tenant_partition_chunk_sk(document_version_id: str, index: int) -> str:
    """The first layout's chunk key in the tenant's partition."""
    return f"CHUNK#{document_version_id}#{index:06d}"


def _tenant_partition_pointer_key(tenant_id: str, chunk_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"CHUNKID#{chunk_id}"}


_CHUNK_ID_NAMESPACE = uuid.UUID("6f0d4b8e-2c1a-5e7b-9a43-0c5f1d2e8b71")


def chunk_id(document_version_id: str, execution_name: str, index: int) -> str:
    """Stable for a chunk of one ingestion attempt (a retried task writes the same ids); a rerun, being a
    new execution, gives its chunks new ids, so an id read before the rerun never names different text."""
    return str(uuid.uuid5(_CHUNK_ID_NAMESPACE, f"{document_version_id}/{execution_name}/{index}"))


class StoredChunk(BaseModel):
    chunk_id: str
    document_version_id: str
    index: int
    text: str
    attempt: int
    created_at: datetime


def put_request(ingestion: Ingestion) -> list[dict[str, Any]]:
    """The transaction items that create the ingestion, listed and counted (`listing`), with its document version."""
    record = {**key(ingestion.tenant_id, ingestion.document_version_id), **ingestion.model_dump(mode="json"),
              listing.LISTED_AS: listing.entry_sk(ingestion)}
    return [{"Put": {"TableName": settings().table_name, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": record}}, *listing.created(ingestion)]


def get(tenant_id: str, document_version_id: str) -> Ingestion | None:
    item = _table().get_item(Key=key(tenant_id, document_version_id), ConsistentRead=True).get("Item")
    return Ingestion.model_validate(item) if item else None


def _query(query: dict[str, Any]) -> list[dict[str, Any]]:
    return aws.query(_table(), query)


def get_many(tenant_id: str, document_version_ids: list[str]) -> list[Ingestion]:
    """The ingestions of these versions in the order given (one BatchGetItem a hundred); those gone are left out."""
    items = aws.batch_get(_table(), [key(tenant_id, version_id) for version_id in document_version_ids],
                          consistent=False)
    found = {str(item["document_version_id"]): Ingestion.model_validate(item) for item in items}
    return [found[version_id] for version_id in document_version_ids if version_id in found]


def _update(tenant_id: str, document_version_id: str, values: dict[str, Any], *,
            execution_name: str | None, expected_attempt: int | None = None,
            statuses: Iterable[IngestionStatus] = OPEN_STATUSES) -> Ingestion | None:
    """SET `values` if the status is one of `statuses` (and the execution/attempt match); None if not."""
    now = clock.iso(clock.now())
    values = {**values, "last_state_update_timestamp": now}
    allowed = {f":status{i}": status.value for i, status in enumerate(statuses)}
    condition = f"#status IN ({', '.join(allowed)})"
    extra: dict[str, Any] = {}
    if execution_name is not None:
        condition += " AND execution_name = :execution"
        extra[":execution"] = execution_name
    if expected_attempt is not None:
        condition += " AND attempt = :expected_attempt"
        extra[":expected_attempt"] = expected_attempt
    try:
        response = _table().update_item(
            Key=key(tenant_id, document_version_id),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
            ConditionExpression=f"attribute_exists(pk) AND {condition}",
            ExpressionAttributeNames={"#status": "status", **{f"#{name}": name for name in values}},
            ExpressionAttributeValues={**{f":{name}": value for name, value in values.items()}, **allowed, **extra},
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    updated = Ingestion.model_validate(response["Attributes"])
    if "status" in values:
        observability.ingestion_changed(updated)
    return updated


def begin(tenant_id: str, document_version_id: str, execution_name: str) -> Ingestion | None:
    """pending -> processing for the current execution; None if cancelled, superseded or deleted."""
    now = clock.iso(clock.now())
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.PROCESSING.value, "last_activity": Activity.EXTRACT.value,
                    "start_time": now},
                   execution_name=execution_name)


def resume(tenant_id: str, document_version_id: str, execution_name: str) -> Ingestion | None:
    """The next range of a processing ingestion starts; None if cancelled, superseded or deleted."""
    return _update(tenant_id, document_version_id, {"last_activity": Activity.EXTRACT.value},
                   execution_name=execution_name)


def record_activity(tenant_id: str, document_version_id: str, execution_name: str, activity: Activity) -> bool:
    return _update(tenant_id, document_version_id, {"last_activity": activity.value},
                   execution_name=execution_name) is not None


def complete(tenant_id: str, document_version_id: str, execution_name: str, chunks: int) -> bool:
    """Completed with `chunks` chunks, after the attempt removed those past them (`ChunkWriter.finish`)."""
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.COMPLETED.value, "last_activity": Activity.COMPLETED.value,
                    "chunks_processed": chunks, "chunk_extent": chunks, "chunk_layout": CHUNK_LAYOUT,
                    "error": None, "close_time": clock.iso(clock.now())},
                   execution_name=execution_name) is not None


def fail(tenant_id: str, document_version_id: str, execution_name: str, error: str) -> bool:
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.FAILED.value, "last_activity": Activity.FAILED.value,
                    "error": error[:8192], "close_time": clock.iso(clock.now())},
                   execution_name=execution_name) is not None


def cancel(tenant_id: str, document_version_id: str) -> Ingestion | None:
    """Open -> cancelled, whichever execution runs; None if it already ended."""
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.CANCELLED.value, "last_activity": Activity.CANCELLED.value,
                    "close_time": clock.iso(clock.now())},
                   execution_name=None)


def restart(ingestion: Ingestion, execution_name: str) -> Ingestion | None:
    """A finished ingestion becomes pending under a new attempt; None if it is open or changed meanwhile."""
    now = clock.iso(clock.now())
    finished = [s for s in IngestionStatus if not s.open]
    return _update(ingestion.tenant_id, ingestion.document_version_id,
                   {"status": IngestionStatus.PENDING.value, "last_activity": Activity.RERUN.value,
                    "attempt": ingestion.attempt + 1, "execution_name": execution_name, "error": None,
                    "last_run_timestamp": now, "start_time": None, "close_time": None},
                   execution_name=None, expected_attempt=ingestion.attempt, statuses=finished)


# DynamoDB takes at most 100 actions per transaction; one of them is the fence.
_WRITES_PER_TRANSACTION = 99


class Superseded(Exception):
    """The attempt was cancelled, rerun or deleted meanwhile: none of its writes lands any more."""


def _fence_condition(execution_name: str) -> dict[str, Any]:
    return {"ConditionExpression": "#status = :processing AND execution_name = :execution",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":processing": IngestionStatus.PROCESSING.value,
                                          ":execution": execution_name}}


def _fence(tenant_id: str, document_version_id: str, execution_name: str, extent: int | None) -> dict[str, Any]:
    """The check that the ingestion is processing under this execution, in every chunk transaction;
    with `extent`, it also raises the record's `chunk_extent` to it."""
    target = {"TableName": settings().table_name, "Key": key(tenant_id, document_version_id)}
    condition = _fence_condition(execution_name)
    if extent is None:
        return {"ConditionCheck": {**target, **condition}}
    return {"Update": {**target, **condition, "UpdateExpression": "SET chunk_extent = :extent",
                       "ExpressionAttributeValues": {**condition["ExpressionAttributeValues"], ":extent": extent}}}


def _in_transactions(groups: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Writes packed into transactions, never splitting a group (a chunk with its pointers)."""
    batch: list[dict[str, Any]] = []
    for group in groups:
        if len(batch) + len(group) > _WRITES_PER_TRANSACTION:
            yield batch
            batch = []
        batch += group
    if batch:
        yield batch


def _block_items(tenant_id: str, document_version_id: str, block: int) -> list[dict[str, Any]]:
    """Keys and ids of the chunks of one block. Consistent, so the chunks of every attempt fenced out
    before this read are all found."""
    return _query({"KeyConditionExpression": Key("pk").eq(_chunk_partition(tenant_id, document_version_id, block)),
                   "ProjectionExpression": "pk, sk, chunk_id", "ConsistentRead": True})


def _index_of(item: dict[str, Any]) -> int:
    return int(str(item["sk"]).rsplit("#", 1)[1])


def _blocks_below(extent: int) -> range:
    return range(-(-extent // CHUNKS_PER_PARTITION))


class ChunkWriter:
    """Writes one attempt's chunks, a block (partition) at a time, in transactions fenced on the ingestion.

    A chunk, its pointer and the removal of the pointer of the chunk it replaces share a transaction.
    Raises `Superseded` as soon as a transaction is refused because the ingestion was cancelled,
    rerun or deleted: what was written before belongs to the attempt that was current then, and the
    next attempt replaces it. Holds at most one block of chunks.
    """

    def __init__(self, ingestion: Ingestion, first_index: int = 0) -> None:
        self.ingestion = ingestion
        self.extent = ingestion.chunk_extent
        self._now = clock.iso(clock.now())
        self._held: list[Chunk] = []
        self._storing = False
        self.written = first_index  # the index after the last chunk handed over

    def write(self, chunks: Iterable[Chunk]) -> None:
        for chunk in chunks:
            self.written = chunk.index + 1
            if self._held and chunk.index // CHUNKS_PER_PARTITION != self._held[0].index // CHUNKS_PER_PARTITION:
                self.flush()
            self._held.append(chunk)

    def flush(self) -> None:
        if not self._held:
            return
        chunks, self._held = self._held, []
        tenant_id, version_id = self.ingestion.tenant_id, self.ingestion.document_version_id
        if not self._storing:
            if not record_activity(tenant_id, version_id, self.ingestion.execution_name, Activity.STORE):
                raise Superseded
            self._storing = True
        stored = {_index_of(item): item.get("chunk_id")
                  for item in _block_items(tenant_id, version_id, chunks[0].index // CHUNKS_PER_PARTITION)}
        self._transact([self._replacing(chunk, stored.get(chunk.index)) for chunk in chunks], chunks[-1].index + 1)

    def finish(self, count: int) -> None:
        """Write what is held, then delete the chunks from `count` up to the extent (a longer attempt's)."""
        self.flush()
        tenant_id, version_id = self.ingestion.tenant_id, self.ingestion.document_version_id
        for block in _blocks_below(self.extent)[count // CHUNKS_PER_PARTITION:]:
            self._transact([_chunk_deletes(tenant_id, item) for item in _block_items(tenant_id, version_id, block)
                            if _index_of(item) >= count], reach=0)

    def _replacing(self, chunk: Chunk, old_id: str | None) -> list[dict[str, Any]]:
        ingestion, table_name = self.ingestion, settings().table_name
        tenant_id, version_id = ingestion.tenant_id, ingestion.document_version_id
        new_id = chunk_id(version_id, ingestion.execution_name, chunk.index)
        return [
            {"Put": {"TableName": table_name, "Item": {
                **_chunk_key(tenant_id, version_id, chunk.index), "tenant_id": tenant_id,
                "document_version_id": version_id, "index": chunk.index, "text": chunk.text, "start": chunk.start,
                "end": chunk.end, "attempt": ingestion.attempt, "chunk_id": new_id, "created_at": self._now}}},
            {"Put": {"TableName": table_name, "Item": {**_chunk_pointer_key(tenant_id, new_id),
                                                       "document_version_id": version_id, "index": chunk.index}}},
            *([{"Delete": {"TableName": table_name, "Key": _chunk_pointer_key(tenant_id, old_id)}}]
              if old_id and old_id != new_id else []),
        ]

    def _transact(self, groups: list[list[dict[str, Any]]], reach: int) -> None:
        """Write the groups; the first transaction also raises the extent to `reach` if it is beyond it
        (an upper bound is all the extent must be)."""
        ingestion = self.ingestion
        client = _table().meta.client
        for writes in _in_transactions(groups):
            raises = reach > self.extent
            fence = _fence(ingestion.tenant_id, ingestion.document_version_id, ingestion.execution_name,
                           reach if raises else None)
            try:
                client.transact_write_items(TransactItems=[*writes, fence])
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or [{}]
                if reasons[-1].get("Code") == "ConditionalCheckFailed":
                    raise Superseded from None
                raise
            self.extent = max(self.extent, reach)


def _chunk_deletes(tenant_id: str, item: dict[str, Any]) -> list[dict[str, Any]]:
    """Deletes of a stored chunk and, when it has an id, of its pointer."""
    table_name = settings().table_name
    pointer = [_chunk_pointer_key(tenant_id, item["chunk_id"])] if item.get("chunk_id") else []
    return [{"Delete": {"TableName": table_name, "Key": k}}
            for k in [{"pk": item["pk"], "sk": item["sk"]}, *pointer]]


def chunk_range(tenant_id: str, document_version_id: str, first: int, last: int,
                layout: int) -> list[StoredChunk]:
    """The version's chunks with indexes `first` to `last` (inclusive), in order: a query per block
    (one or two for a page), one query in the first layout."""
    if last < first:
        return []
    if layout < CHUNK_LAYOUT:
        conditions = [Key("pk").eq(_pk(tenant_id)) & Key("sk").between(
            _tenant_partition_chunk_sk(document_version_id, first),
            _tenant_partition_chunk_sk(document_version_id, last))]
    else:
        conditions = [
            Key("pk").eq(_chunk_partition(tenant_id, document_version_id, block)) & Key("sk").between(
                _chunk_sk(max(first, block * CHUNKS_PER_PARTITION)),
                _chunk_sk(min(last, block * CHUNKS_PER_PARTITION + CHUNKS_PER_PARTITION - 1)))
            for block in range(first // CHUNKS_PER_PARTITION, last // CHUNKS_PER_PARTITION + 1)]
    return [StoredChunk.model_validate(item) for condition in conditions
            for item in _query({"KeyConditionExpression": condition, "ConsistentRead": True})]


def locate_chunk(tenant_id: str, chunk_id: str) -> tuple[str, int, int] | None:
    """The (document version id, index, layout) of the chunk with this id, or None if no stored chunk has it."""
    for layout, pointer_key in ((CHUNK_LAYOUT, _chunk_pointer_key(tenant_id, chunk_id)),
                                (1, _tenant_partition_pointer_key(tenant_id, chunk_id))):
        pointer = _table().get_item(Key=pointer_key, ConsistentRead=True).get("Item")
        if pointer:
            return str(pointer["document_version_id"]), int(pointer["index"]), layout
    return None


def _tenant_partition_chunks(tenant_id: str, document_version_id: str) -> list[dict[str, Any]]:
    condition = Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with(f"CHUNK#{document_version_id}#")
    return _query({"KeyConditionExpression": condition, "ConsistentRead": True})


def list_chunks(tenant_id: str, document_version_id: str) -> list[dict[str, Any]]:
    """Every stored chunk of a version in order, of either layout (blocks are read until an empty one)."""
    chunks, block = _tenant_partition_chunks(tenant_id, document_version_id), 0
    while items := _query({"KeyConditionExpression": Key("pk").eq(
            _chunk_partition(tenant_id, document_version_id, block)), "ConsistentRead": True}):
        chunks += items
        block += 1
    return chunks


def _delete_all(keys: Iterable[dict[str, Any]]) -> None:
    with _table().batch_writer() as batch:
        for item_key in keys:
            batch.delete_item(Key=item_key)


def delete_tenant_partition_chunks(tenant_id: str, document_version_id: str) -> None:
    """Remove the version's chunks of the first layout (a completed rerun has replaced them)."""
    _delete_all(k for item in _tenant_partition_chunks(tenant_id, document_version_id)
                for k in [{"pk": item["pk"], "sk": item["sk"]},
                          *([_tenant_partition_pointer_key(tenant_id, item["chunk_id"])] if item.get("chunk_id")
                            else [])])


# Records removed per transaction by `delete`: each with its entry, and one count update (TransactWriteItems takes 100).
_DELETES_PER_TRANSACTION = 49


def _record_delete(tenant_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """Deletes the record only if it is listed as read (or still unlisted), so the count taken away is its own."""
    listed_as = record.get(listing.LISTED_AS)
    condition = (f"{listing.LISTED_AS} = :entry" if listed_as else f"attribute_not_exists({listing.LISTED_AS})")
    return {"Delete": {"TableName": settings().table_name, "Key": key(tenant_id, str(record["document_version_id"])),
                       "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                       **({"ExpressionAttributeValues": {":entry": listed_as}} if listed_as else {})}}


def _delete_records(tenant_id: str, records: list[dict[str, Any]]) -> bool:
    """False if one of them was deleted or listed since it was read: nothing is written then."""
    writes = [_record_delete(tenant_id, record) for record in records]
    writes += listing.removed(tenant_id, [str(r[listing.LISTED_AS]) for r in records if r.get(listing.LISTED_AS)])
    try:
        _table().meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        if not aws.failed_conditions(error):
            raise
        return False
    return True


def delete(tenant_id: str, document_version_ids: list[str]) -> None:
    """Remove ingestions, their listing entries and counts, and all their chunks (their versions are being deleted).

    The ingestion is closed first, so no attempt passes the chunk fence any more, and its record is
    read after that: its `chunk_extent` then bounds every chunk there will ever be. Blocks are
    removed from the last one down and the records last, so a delete retried after a crash still
    finds what is left from the record. Only the version's own blocks are read, never the tenant.
    Each record goes with its listing entry and count in one transaction; a batch that loses a race
    (a record deleted or listed meanwhile) is redone record by record from a fresh read.
    """
    for version_id in document_version_ids:
        cancel(tenant_id, version_id)
        ingestion = get(tenant_id, version_id)
        extent = max(ingestion.chunk_extent, ingestion.chunks_processed or 0) if ingestion else 0
        for block in reversed(_blocks_below(extent)):
            _delete_all(d["Delete"]["Key"] for item in _block_items(tenant_id, version_id, block)
                        for d in _chunk_deletes(tenant_id, item))
        delete_tenant_partition_chunks(tenant_id, version_id)
    _delete_listed_records(tenant_id, document_version_ids)


def _delete_listed_records(tenant_id: str, document_version_ids: list[str]) -> None:
    keys = [key(tenant_id, version_id) for version_id in document_version_ids]
    records = aws.batch_get(_table(), keys, consistent=True)
    for start in range(0, len(records), _DELETES_PER_TRANSACTION):
        batch = records[start:start + _DELETES_PER_TRANSACTION]
        if _delete_records(tenant_id, batch):
            continue
        for record in batch:
            current: dict[str, Any] | None = record
            while current is not None and not _delete_records(tenant_id, [current]):
                current = _table().get_item(Key=key(tenant_id, str(record["document_version_id"])),
                                            ConsistentRead=True).get("Item")
