"""The run indexes: which global secondary indexes list a tenant's runs, and the attributes that place a run in them.

Every index shares the partition key `rix_pk` = `RUNS#{tenant}` and orders by one sort attribute
that ends in `#{run_id}` (unique, stable order for equal times). The run item carries these
attributes itself (`attributes`, written with the run and moved by every status change), so no
extra item is written per run: DynamoDB keeps the indexes.

- `runs-by-created` INCLUDEs the small attributes every filter tests (`FILTER_ATTRIBUTES`): any
  combination of filters is answered from it with a FilterExpression, without reading runs.
- the others are KEYS_ONLY (a key move costs one index write): a page is read from the index,
  then its runs with one BatchGetItem.

CloudFormation adds one index per stack update, so `RUN_INDEXES` is also the deploy order: the
stack's `run_index_count` setting creates the first N, and the API uses only the ones deployed
(`settings().run_index_count`), answering the others' filters from `runs-by-created`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ksflow import clock
from ksflow.workflows.models import WorkflowRun

PARTITION = "rix_pk"


@dataclass(frozen=True)
class RunIndex:
    name: str
    sort_key: str
    # Non-key attributes the index holds; None: keys only.
    include: tuple[str, ...] | None = None


FILTER_ATTRIBUTES = ("status", "user_id", "definition_owner_id", "workflow_definition_id", "trigger",
                     "created_at", "updated_at", "started_at", "completed_at")

BY_CREATED = RunIndex("runs-by-created", "rix_created", FILTER_ATTRIBUTES)
BY_STATUS = RunIndex("runs-by-status", "rix_status")
BY_INVOKER = RunIndex("runs-by-invoker", "rix_invoker")
BY_OWNER = RunIndex("runs-by-owner", "rix_owner")
BY_OWNER_STATUS = RunIndex("runs-by-owner-status", "rix_owner_status")
BY_STARTED = RunIndex("runs-by-started", "rix_started")
BY_COMPLETED = RunIndex("runs-by-completed", "rix_completed")

# In deploy order: each stack update may add one.
RUN_INDEXES = (BY_CREATED, BY_STATUS, BY_INVOKER, BY_OWNER, BY_OWNER_STATUS, BY_STARTED, BY_COMPLETED)


def partition(tenant_id: str) -> str:
    return f"RUNS#{tenant_id}"


def _created(run: WorkflowRun) -> str:
    return f"{clock.iso(run.created_at)}#{run.id}"


def attributes(run: WorkflowRun) -> dict[str, Any]:
    """The index attributes of a run as it is now (`rix_completed` only once it has ended)."""
    created = _created(run)
    values: dict[str, Any] = {
        PARTITION: partition(run.tenant_id),
        BY_CREATED.sort_key: created,
        BY_STATUS.sort_key: f"{run.status.value}#{created}",
        BY_INVOKER.sort_key: f"{run.user_id}#{created}",
        BY_OWNER.sort_key: f"{run.definition_owner_id}#{created}",
        BY_OWNER_STATUS.sort_key: f"{run.definition_owner_id}#{run.status.value}#{created}",
        BY_STARTED.sort_key: f"{clock.iso(run.started_at)}#{run.id}",
    }
    if run.completed_at is not None:
        values[BY_COMPLETED.sort_key] = f"{clock.iso(run.completed_at)}#{run.id}"
    return values


# Index attributes a run holds only at times (`rix_completed` while it has ended).
OPTIONAL = (BY_COMPLETED.sort_key,)
