"""Run aggregates: one item per tenant and 15-minute bucket of run creation times, kept in the runs' transactions.

Item `AGG#{tenant}` / `Q#{bucket start}` holds counters (flat attributes, so one `ADD` creates
any of them without reading the item):
- `n_{STATUS}`, `h_{bin}`: the tenant's runs created in the bucket by current status, and the
  duration histogram (`analytics.histogram`) of those that ended;
- `d_{definition}_{STATUS}`, `dh_{definition}_{bin}`: the same per definition;
- `o_{owner}_{STATUS}`, `oh_{owner}_{bin}`: per definition creator (what a USER may read);
- `u_{user}`, `du_{definition}_{user}`, `ou_{owner}_{user}`: runs each user invoked, for
  distinct invokers and leaderboards in each scope.
A run's creation, each status change (a retry that reopens a run takes its duration back out)
and its deletion change one such item, in the same transaction as the run, so the figures are
exact. Reads take the window's buckets by key: what a report costs follows the window, never
the number of runs.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from ksflow import aws, clock
from ksflow.analytics import histogram
from ksflow.analytics.buckets import bucket_start
from ksflow.workflows.models import WorkflowRun


def bucket_key(tenant_id: str, start: datetime) -> dict[str, str]:
    return {"pk": f"AGG#{tenant_id}", "sk": f"Q#{clock.iso(start)}"}


def _status(run: WorkflowRun, sign: int) -> Counter[str]:
    status = run.status.value
    amounts = Counter({f"n_{status}": sign, f"d_{run.workflow_definition_id}_{status}": sign,
                       f"o_{run.definition_owner_id}_{status}": sign})
    if run.status.terminal and run.completed_at is not None:
        bin_ = histogram.key_of((run.completed_at - run.started_at).total_seconds())
        amounts.update({f"h_{bin_}": sign, f"dh_{run.workflow_definition_id}_{bin_}": sign,
                        f"oh_{run.definition_owner_id}_{bin_}": sign})
    return amounts


def _invoker(run: WorkflowRun, sign: int) -> Counter[str]:
    return Counter({f"u_{run.user_id}": sign, f"du_{run.workflow_definition_id}_{run.user_id}": sign,
                    f"ou_{run.definition_owner_id}_{run.user_id}": sign})


def _key_of(run: WorkflowRun) -> dict[str, str]:
    return bucket_key(run.tenant_id, bucket_start(run.created_at))


def created(table_name: str, run: WorkflowRun) -> list[dict[str, Any]]:
    return [aws.adding(table_name, _key_of(run), _status(run, 1) + _invoker(run, 1))]


def moved(table_name: str, before: WorkflowRun, after: WorkflowRun) -> list[dict[str, Any]]:
    amounts = _status(after, 1)
    amounts.subtract(_status(before, 1))
    return [aws.adding(table_name, _key_of(after), amounts)] if any(amounts.values()) else []


def removed(table_name: str, runs: list[WorkflowRun]) -> list[dict[str, Any]]:
    """The runs taken out of their buckets: one update per bucket item."""
    by_bucket: dict[tuple[str, str], Counter[str]] = {}
    for run in runs:
        key = _key_of(run)
        amounts = by_bucket.setdefault((key["pk"], key["sk"]), Counter())
        amounts.update(_status(run, -1))
        amounts.update(_invoker(run, -1))
    return [aws.adding(table_name, {"pk": pk, "sk": sk}, amounts) for (pk, sk), amounts in by_bucket.items()
            if any(amounts.values())]
