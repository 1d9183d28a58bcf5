"""Run items and their guarded state changes.

Items:
- `RUN#{run_id}` / `RUN`: the run (`WorkflowRun`), with `gsi1` = (`WORKFLOWDEF#{definition_id}`,
  `{created_at}#{run_id}`) so a definition's runs list newest first.
- `WORKFLOWDEF#{definition_id}` / `IDEMPOTENCY#{key}`: which run an idempotency key made.

Every status change is a conditional write on the current status, so whichever of the
callback, the deadline, the expiry schedule or a cancel writes first wins, and the
loser changes nothing.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws, clock
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


def insert(run: WorkflowRun) -> None:
    """Write a new run and, atomically, its idempotency claim."""
    table = _table()
    put_run = {"Put": {"TableName": table.name, "Item": _run_item(run),
                       "ConditionExpression": "attribute_not_exists(pk)"}}
    if run.idempotency_key is None:
        table.put_item(**{k: v for k, v in put_run["Put"].items() if k != "TableName"})
        return
    claim = {**claim_key(run.workflow_definition_id, run.idempotency_key), "run_id": run.id,
             "tenant_id": run.tenant_id}
    try:
        table.meta.client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table.name, "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}},
            put_run,
        ])
    except ClientError as error:
        if _conditional_failure(error):
            raise DuplicateIdempotencyKey(run.idempotency_key) from error
        raise


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
    """Write a terminal status if the run is still open; the written run, or None if it lost."""
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
    return WorkflowRun.model_validate(response["Attributes"])
