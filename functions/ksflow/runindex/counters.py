"""Exact run counts that listings answer `total` from, kept in the same transactions as the runs.

Items (partition `RUNSTATS#{tenant}`):
- `TENANT`: runs of the tenant by status (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`);
- `OWNER#{user}`: runs of the definitions a user created, by status (what a USER may list);
- `INVOKER#{user}`: runs a user invoked (`runs`).

Each is changed by an `ADD` in the transaction that creates, moves or deletes a run, so a
total never needs a count of runs and never drifts from them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ksflow import aws
from ksflow.workflows.models import RunStatus, WorkflowRun

INVOKED = "runs"


def _partition(tenant_id: str) -> str:
    return f"RUNSTATS#{tenant_id}"


def tenant_key(tenant_id: str) -> dict[str, str]:
    return {"pk": _partition(tenant_id), "sk": "TENANT"}


def owner_key(tenant_id: str, owner_id: str) -> dict[str, str]:
    return {"pk": _partition(tenant_id), "sk": f"OWNER#{owner_id}"}


def invoker_key(tenant_id: str, user_id: str) -> dict[str, str]:
    return {"pk": _partition(tenant_id), "sk": f"INVOKER#{user_id}"}


def _by_status(table_name: str, run: WorkflowRun, amounts: dict[str, int]) -> list[dict[str, Any]]:
    return [aws.adding(table_name, tenant_key(run.tenant_id), amounts),
            aws.adding(table_name, owner_key(run.tenant_id, run.definition_owner_id), amounts)]


def created(table_name: str, run: WorkflowRun) -> list[dict[str, Any]]:
    return [*_by_status(table_name, run, {run.status.value: 1}),
            aws.adding(table_name, invoker_key(run.tenant_id, run.user_id), {INVOKED: 1})]


def moved(table_name: str, before: WorkflowRun, after: WorkflowRun) -> list[dict[str, Any]]:
    if before.status == after.status:
        return []
    return _by_status(table_name, before, {before.status.value: -1, after.status.value: 1})


def removed(table_name: str, runs: list[WorkflowRun]) -> list[dict[str, Any]]:
    """The counts of `runs` taken away, one update per counter item (runs of one tenant)."""
    amounts: dict[tuple[str, str], Counter[str]] = {}
    for run in runs:
        for key, name in ((tenant_key(run.tenant_id), run.status.value),
                          (owner_key(run.tenant_id, run.definition_owner_id), run.status.value),
                          (invoker_key(run.tenant_id, run.user_id), INVOKED)):
            amounts.setdefault((key["pk"], key["sk"]), Counter())[name] -= 1
    return [aws.adding(table_name, {"pk": pk, "sk": sk}, dict(counts)) for (pk, sk), counts in amounts.items()]


def status_counts(item: dict[str, Any] | None) -> dict[RunStatus, int]:
    """A counter item's counts by status (0 for a status never counted)."""
    return {status: int((item or {}).get(status.value, 0)) for status in RunStatus}


def invoked(item: dict[str, Any] | None) -> int:
    return int((item or {}).get(INVOKED, 0))
