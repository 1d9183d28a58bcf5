"""Run items and their guarded state changes.

Items:
- `RUN#{run_id}` / `RUN`: the run (`WorkflowRun`), with `gsi1` = (`WORKFLOWDEF#{definition_id}`,
  `{created_at}#{run_id}`) so a definition's runs list newest first.
- `WORKFLOWDEF#{definition_id}` / `IDEMPOTENCY#{key}`: which run an idempotency key made.
- the definition item's `run_count`, changed in the same transaction as each run write.

Every status change is a conditional write on the current status, so whichever of the
callback, the deadline, the expiry schedule or a cancel writes first wins, and the
loser changes nothing.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from ksflow import aws, clock, observability
from ksflow.config import settings
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun

OPEN_STATUSES = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class DuplicateIdempotencyKey(Exception):
    """Another run already holds the idempotency key."""


def _table() -> Any:
    return aws.table(settings().table_name)


def run_key(run_id: str) -> dict[str, str]:
    return {"pk": f"RUN#{run_id}", "sk": "RUN"}


def claim_key(definition_id: str, idempotency_key: str) -> dict[str, str]:
    return {"pk": f"WORKFLOWDEF#{definition_id}", "sk": f"IDEMPOTENCY#{idempotency_key}"}


def _run_item(run: WorkflowRun) -> dict[str, Any]:
    return {
        **run_key(run.id), **run.model_dump(mode="json", exclude_none=True),
        "gsi1pk": f"WORKFLOWDEF#{run.workflow_definition_id}",
        "gsi1sk": f"{clock.iso(run.created_at)}#{run.id}",
    }


def _conditional_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DefinitionGone(Exception):
    """The definition was deleted while the run was being created."""


def _definition_key(run: WorkflowRun) -> dict[str, str]:
    return {"pk": f"TENANT#{run.tenant_id}", "sk": f"WORKFLOWDEF#{run.workflow_definition_id}"}


def _count_run(table_name: str, run: WorkflowRun, delta: int) -> dict[str, Any]:
    """Keeps the definition's run total exact, so listing never counts runs."""
    return {"Update": {"TableName": table_name, "Key": _definition_key(run),
                       "UpdateExpression": "ADD run_count :delta", "ConditionExpression": "attribute_exists(pk)",
                       "ExpressionAttributeValues": {":delta": delta}}}


def insert(run: WorkflowRun) -> None:
    """Write a new run, its idempotency claim and its definition's run count in one transaction."""
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
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
            raise DuplicateIdempotencyKey(run.idempotency_key or "") from error
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise DefinitionGone(run.workflow_definition_id) from error
        raise


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
    return True


def delete_many(runs: list[WorkflowRun]) -> None:
    """Remove the runs of a deleted definition with their idempotency claims."""
    with _table().batch_writer() as batch:
        for run in runs:
            batch.delete_item(Key=run_key(run.id))
            if run.idempotency_key is not None:
                batch.delete_item(Key=claim_key(run.workflow_definition_id, run.idempotency_key))


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
    return True


def finish(run_id: str, status: RunStatus, error: str | None, ended_by: EndedBy) -> WorkflowRun | None:
    """Write a terminal status if the run is still open; the written run, or None if it lost.

    Every ending passes through here exactly once, so this is also where outcomes are counted.
    """
    now = clock.iso(clock.now())
    values: dict[str, Any] = {":status": status.value, ":now": now, ":by": ended_by.value,
                              ":pending": OPEN_STATUSES[0], ":running": OPEN_STATUSES[1]}
    update = "SET #status = :status, completed_at = :now, updated_at = :now, ended_by = :by"
    if error is not None:
        update += ", #error = :error"
        values[":error"] = error
    try:
        response = _table().update_item(
            Key=run_key(run_id),
            UpdateExpression=update,
            ConditionExpression="#status IN (:pending, :running)",
            ExpressionAttributeNames={"#status": "status", **({"#error": "error"} if error is not None else {})},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except ClientError as failure:
        if _conditional_failure(failure):
            return None
        raise
    finished = WorkflowRun.model_validate(response["Attributes"])
    observability.run_ended(finished)
    return finished
