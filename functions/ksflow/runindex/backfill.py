"""Index and count the runs a table held before the run indexes existed (an upgrade's one-off step).

Run once after the last index is deployed: `ksflow admin index-runs`. It reads the table once
(a Scan, with the operator's credentials; no function of the service scans) and writes each
legacy run as `run_store.index_legacy` does, so running it twice, or while runs change, counts
every run exactly once. A legacy run that changes status before it is reached is indexed by
that change.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr

from ksflow.runindex import layout
from ksflow.workflows import run_store
from ksflow.workflows.models import WorkflowRun


def legacy_runs(table: Any) -> Any:
    request: dict[str, Any] = {"FilterExpression": Attr("sk").eq("RUN") & Attr(layout.PARTITION).not_exists()}
    while True:
        page = table.scan(**request)
        yield from (WorkflowRun.model_validate(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def backfill(table: Any) -> int:
    """How many runs were indexed now."""
    return sum(run_store.index_legacy(run) for run in legacy_runs(table))
