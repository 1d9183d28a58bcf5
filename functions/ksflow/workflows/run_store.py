"""Run items and their guarded state changes.

Items:
- `RUN#{run_id}` / `RUN`: the run (`WorkflowRun`), with `gsi1` = (`WORKFLOWDEF#{definition_id}`,
  `{created_at}#{run_id}`) so a definition's runs list newest first.
- `WORKFLOWDEF#{definition_id}` / `IDEMPOTENCY#{sha256(key)}`: which run an idempotency key made
  (hashed: a 255-character key of 4-byte characters would not fit a sort key).
- `WORKFLOWDEF#{definition_id}` / `WEBHOOK#{sha256(webhook-id)}`: the run a signed callback message
  was accepted for, so the same signed message cannot end another run; expires (TTL
  `expires_at`) once the signature's timestamp window is over.
- the definition item's `run_count`, changed in the same transaction as each run write, and
  `last_scheduled_run_id`, set by the write of each scheduled run.

Every status change is a conditional write on the current status, so whichever of the
callback, the deadline, the expiry schedule or a cancel writes first wins, and the
loser changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from ksflow import aws, clock, observability
from ksflow.config import settings
from ksflow.workflows import snapshots
from ksflow.workflows.models import EndedBy, RunStatus, RunTrigger, WorkflowRun

OPEN_STATUSES = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class DuplicateIdempotencyKey(Exception):
    """Another run already holds the idempotency key."""


def _table() -> Any:
    return aws.table(settings().table_name)


def run_key(run_id: str) -> dict[str, str]:
    return {"pk": f"RUN#{run_id}", "sk": "RUN"}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def claim_key(definition_id: str, idempotency_key: str) -> dict[str, str]:
    return {"pk": f"WORKFLOWDEF#{definition_id}", "sk": f"IDEMPOTENCY#{_digest(idempotency_key)}"}


def message_claim_key(definition_id: str, message_id: str) -> dict[str, str]:
    return {"pk": f"WORKFLOWDEF#{definition_id}", "sk": f"WEBHOOK#{_digest(message_id)}"}


def _run_item(run: WorkflowRun) -> dict[str, Any]:
    external = {"run_snapshot"} if run.snapshot_s3_key else set()
    return {
        **run_key(run.id), **run.model_dump(mode="json", exclude_none=True, exclude=external),
        "gsi1pk": f"WORKFLOWDEF#{run.workflow_definition_id}",
        "gsi1sk": f"{clock.iso(run.created_at)}#{run.id}",
    }


def _conditional_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DefinitionGone(Exception):
    """The definition was deleted while the run was being created."""


def _definition_key(run: WorkflowRun) -> dict[str, str]:
    return definition_key(run.tenant_id, run.workflow_definition_id)


def definition_key(tenant_id: str, definition_id: str) -> dict[str, str]:
    """The definition item, whose counters the run writes keep (the item itself is `definitions`')."""
    return {"pk": f"TENANT#{tenant_id}", "sk": f"WORKFLOWDEF#{definition_id}"}


def _count_run(table_name: str, run: WorkflowRun, delta: int) -> dict[str, Any]:
    """Keeps the definition's run total exact, so listing never counts runs.

    `runs_created` only grows: a definition delete conditional on it cannot miss a run created
    while another was removed.
    """
    update = "ADD run_count :delta" + (", runs_created :delta" if delta > 0 else "")
    values: dict[str, Any] = {":delta": delta}
    if delta > 0 and run.trigger == RunTrigger.SCHEDULE:
        # The run the next occurrence checks for overlap; an occurrence that ran clears the last one's error.
        update += " SET last_scheduled_run_id = :run REMOVE last_schedule_error"
        values[":run"] = run.id
    return {"Update": {"TableName": table_name, "Key": _definition_key(run),
                       "UpdateExpression": update, "ConditionExpression": "attribute_exists(pk)",
                       "ExpressionAttributeValues": values}}


def _externalize_snapshot(run: WorkflowRun) -> WorkflowRun:
    """A run whose snapshot is too large for its item gets it written to S3, and a pointer."""
    assert run.run_snapshot is not None
    body = run.run_snapshot.model_dump_json().encode()
    if len(body) <= snapshots.INLINE_LIMIT_BYTES:
        return run
    key = snapshots.object_key(run.tenant_id, run.id)
    snapshots.put(key, body)
    return run.model_copy(update={"snapshot_s3_key": key, "snapshot_bytes": len(body)})


def insert(run: WorkflowRun) -> WorkflowRun:
    """Write a new run, its idempotency claim and its definition's run counts in one transaction."""
    run = _externalize_snapshot(run)
    table = _table()
    writes = [
        {"Put": {"TableName": table.name, "Item": _run_item(run), "ConditionExpression": "attribute_not_exists(pk)"}},
        _count_run(table.name, run, 1),
    ]
    if run.idempotency_key is not None:
        claim = {**claim_key(run.workflow_definition_id, run.idempotency_key), "run_id": run.id,
                 "tenant_id": run.tenant_id}
        writes.append({"Put": {"TableName": table.name, "Item": claim,
                               "ConditionExpression": "attribute_not_exists(pk)"}})
    try:
        table.meta.client.transact_write_items(TransactItems=writes)
    except BaseException as error:
        if run.snapshot_s3_key:
            snapshots.delete([run.snapshot_s3_key])
        failed = aws.failed_conditions(error)
        if 2 in failed:
            raise DuplicateIdempotencyKey(run.idempotency_key or "") from error
        if 1 in failed:
            raise DefinitionGone(run.workflow_definition_id) from error
        raise
    return run


def with_snapshot(run: WorkflowRun) -> WorkflowRun:
    """The run with its snapshot, read from S3 if it is kept there."""
    if run.run_snapshot is not None or run.snapshot_s3_key is None:
        return run
    return run.model_copy(update={"run_snapshot": snapshots.read(run.snapshot_s3_key)})


def _gsi_query(definition_id: str, limit: int | None, open_only: bool = False) -> list[dict[str, Any]]:
    """Runs of a definition, newest first, reading no more than `limit` items when given."""
    query: dict[str, Any] = {"IndexName": "gsi1", "ScanIndexForward": False,
                             "KeyConditionExpression": Key("gsi1pk").eq(f"WORKFLOWDEF#{definition_id}")}
    if open_only:
        query["FilterExpression"] = Attr("status").is_in(list(OPEN_STATUSES))
    items: list[dict[str, Any]] = []
    while True:
        if limit is not None:
            query["Limit"] = limit - len(items)
        page = _table().query(**query)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def list_page(definition_id: str, limit: int, offset: int) -> list[WorkflowRun]:
    return [WorkflowRun.model_validate(item) for item in _gsi_query(definition_id, offset + limit)[offset:]]


def list_all_for_definition(definition_id: str) -> list[WorkflowRun]:
    return [WorkflowRun.model_validate(item) for item in _gsi_query(definition_id, None)]


def list_open_for_definition(definition_id: str) -> list[WorkflowRun]:
    """PENDING and RUNNING runs (the index is read in full; closed runs are filtered out by DynamoDB)."""
    return [WorkflowRun.model_validate(item) for item in _gsi_query(definition_id, None, open_only=True)]


def _claim_delete(table_name: str, run: WorkflowRun) -> dict[str, Any]:
    """Frees the run's idempotency key, unless another run holds it by now."""
    return {"Delete": {"TableName": table_name, "Key": claim_key(run.workflow_definition_id, run.idempotency_key or ""),
                       "ConditionExpression": "attribute_not_exists(pk) OR run_id = :run",
                       "ExpressionAttributeValues": {":run": run.id}}}


def delete(run: WorkflowRun) -> bool:
    """Remove a run record (its execution is left alone) and free its idempotency key."""
    table = _table()
    writes: list[dict[str, Any]] = [
        {"Delete": {"TableName": table.name, "Key": run_key(run.id), "ConditionExpression": "attribute_exists(pk)"}},
        _count_run(table.name, run, -1),
    ]
    if run.idempotency_key is not None:
        writes.append(_claim_delete(table.name, run))
    try:
        table.meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        if _conditional_failure(error):
            return False
        raise
    if run.snapshot_s3_key:
        snapshots.delete([run.snapshot_s3_key])
    return True


def reread(runs: list[WorkflowRun]) -> list[WorkflowRun]:
    """The runs as the table holds them now (consistent reads); those deleted meanwhile are left out."""
    items = aws.batch_get(_table(), [run_key(run.id) for run in runs], consistent=True)
    return [WorkflowRun.model_validate(item) for item in items]


def delete_many(runs: list[WorkflowRun]) -> None:
    """Remove the runs of a deleted definition with their idempotency claims."""
    with _table().batch_writer() as batch:
        for run in runs:
            batch.delete_item(Key=run_key(run.id))
            if run.idempotency_key is not None:
                batch.delete_item(Key=claim_key(run.workflow_definition_id, run.idempotency_key))
    snapshots.delete([run.snapshot_s3_key for run in runs if run.snapshot_s3_key])


def definition_and_claim(tenant_id: str, definition_id: str,
                         idempotency_key: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The definition item and the run its idempotency key made, in one consistent read."""
    definition = definition_key(tenant_id, definition_id)
    if idempotency_key is None:
        return _table().get_item(Key=definition).get("Item"), None
    claim = claim_key(definition_id, idempotency_key)
    items = {item["sk"]: item for item in aws.batch_get(_table(), [definition, claim], consistent=True)}
    claimed = items.get(claim["sk"])
    return items.get(definition["sk"]), claimed["run_id"] if claimed else None


def claimed_run_id(definition_id: str, idempotency_key: str) -> str | None:
    item = _table().get_item(Key=claim_key(definition_id, idempotency_key), ConsistentRead=True).get("Item")
    return item["run_id"] if item else None


def get(run_id: str) -> WorkflowRun | None:
    item = _table().get_item(Key=run_key(run_id), ConsistentRead=True).get("Item")
    return WorkflowRun.model_validate(item) if item else None


def record_task_token(run_id: str, task_token: str) -> WorkflowRun | None:
    """Store the execution's task token while the run is PENDING; None once it has ended."""
    try:
        response = _table().update_item(
            Key=run_key(run_id),
            UpdateExpression="SET task_token = :token, updated_at = :now",
            ConditionExpression="attribute_exists(pk) AND #status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":token": task_token, ":now": clock.iso(clock.now()),
                                       ":pending": RunStatus.PENDING.value},
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if _conditional_failure(error):
            return None
        raise
    return WorkflowRun.model_validate(response["Attributes"])


def mark_running(run_id: str) -> bool:
    """PENDING -> RUNNING when the runner accepted the dispatch; a run that already ended stays."""
    try:
        _table().update_item(
            Key=run_key(run_id),
            UpdateExpression="SET #status = :running, updated_at = :now",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":running": RunStatus.RUNNING.value, ":pending": RunStatus.PENDING.value,
                                       ":now": clock.iso(clock.now())},
        )
    except ClientError as error:
        if _conditional_failure(error):
            return False
        raise
    observability.logger.info("Run is running", extra={"run_id": run_id})
    return True


def _terminal_update(status: RunStatus, error: str | None, ended_by: EndedBy, now: str) -> dict[str, Any]:
    """The parts of an UpdateItem that end a run, guarded by its status still being open."""
    values: dict[str, Any] = {":status": status.value, ":now": now, ":by": ended_by.value,
                              ":pending": OPEN_STATUSES[0], ":running": OPEN_STATUSES[1]}
    names = {"#status": "status"}
    update = "SET #status = :status, completed_at = :now, updated_at = :now, ended_by = :by"
    if error is not None:
        update += ", #error = :error"
        values[":error"] = error
        names["#error"] = "error"
    return {"UpdateExpression": update, "ConditionExpression": "#status IN (:pending, :running)",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def finish(run_id: str, status: RunStatus, error: str | None, ended_by: EndedBy) -> WorkflowRun | None:
    """Write a terminal status if the run is still open; the written run, or None if it lost.

    Every ending passes through here or `finish_reported` exactly once, so outcomes are counted here.
    """
    try:
        response = _table().update_item(Key=run_key(run_id), ReturnValues="ALL_NEW",
                                         **_terminal_update(status, error, ended_by, clock.iso(clock.now())))
    except ClientError as failure:
        if _conditional_failure(failure):
            return None
        raise
    finished = WorkflowRun.model_validate(response["Attributes"])
    observability.run_ended(finished)
    return finished


@dataclass(frozen=True)
class SignedMessage:
    """A callback message whose signature was verified with one of the definition's secrets."""

    message_id: str
    secret_ciphertext: str


# How long an accepted message id is kept: the signature's timestamp window on both sides, and a margin.
MESSAGE_CLAIM_LIFETIME = timedelta(minutes=15)


class MessageReplayed(Exception):
    """The signed message was already accepted for another run."""


class SecretRotated(Exception):
    """The secret that verified the message is no longer the definition's current one."""


def _message_writes(table_name: str, run: WorkflowRun, signed: SignedMessage, now: datetime) -> list[dict[str, Any]]:
    """Claim the message id for this run, and check the verifying secret is still the current one."""
    claim = {**message_claim_key(run.workflow_definition_id, signed.message_id), "run_id": run.id,
             "tenant_id": run.tenant_id, "expires_at": int((now + MESSAGE_CLAIM_LIFETIME).timestamp())}
    return [
        {"Put": {"TableName": table_name, "Item": claim,
                 "ConditionExpression": "attribute_not_exists(pk) OR run_id = :run",
                 "ExpressionAttributeValues": {":run": run.id}}},
        {"ConditionCheck": {"TableName": table_name, "Key": _definition_key(run),
                            "ConditionExpression": "secret_ciphertext = :secret",
                            "ExpressionAttributeValues": {":secret": signed.secret_ciphertext}}},
    ]


def _transact_guarded(writes: list[dict[str, Any]], message_at: int | None) -> bool:
    """Run a transaction; False if the run item's condition failed, the message's own failures raised."""
    try:
        _table().meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        failed = aws.failed_conditions(error)
        if message_at is not None and message_at in failed:
            raise MessageReplayed from error
        if message_at is not None and message_at + 1 in failed:
            raise SecretRotated from error
        if 0 in failed:
            return False
        raise
    return True


def bind_message(run: WorkflowRun, signed: SignedMessage) -> None:
    """Accept a signed message for a run that has already ended (a repeat), changing nothing else."""
    _transact_guarded(_message_writes(_table().name, run, signed, clock.now()), 0)


def finish_reported(run: WorkflowRun, status: RunStatus, error: str | None,
                    signed: SignedMessage | None) -> WorkflowRun | None:
    """End an open run as its callback reports, as read in `run`; None if it ended or changed meanwhile.

    The run must still hold the task token that was read, so the token answered afterwards is the
    one its execution waits on. A signed message is claimed for this run and its secret checked
    against the definition in the same transaction: a replay to another run or a rotated secret
    raises and writes nothing.
    """
    table, now = _table(), clock.now()
    guarded = _terminal_update(status, error, EndedBy.CALLBACK, clock.iso(now))
    if run.task_token is None:
        guarded["ConditionExpression"] += " AND attribute_not_exists(task_token)"
    else:
        guarded["ConditionExpression"] += " AND task_token = :token"
        guarded["ExpressionAttributeValues"][":token"] = run.task_token
    writes = [{"Update": {"TableName": table.name, "Key": run_key(run.id), **guarded}}]
    if signed is not None:
        writes += _message_writes(table.name, run, signed, now)
    if not _transact_guarded(writes, 1 if signed is not None else None):
        return None
    finished = run.model_copy(update={"status": status, "error": error, "completed_at": now, "updated_at": now,
                                      "ended_by": EndedBy.CALLBACK})
    observability.run_ended(finished)
    return finished
