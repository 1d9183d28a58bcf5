"""`GET /v1/workflow-runs/{id}/events`: a run's history, a page at a time (one query a page)."""

from __future__ import annotations

from ksflow import aws
from ksflow.config import settings
from ksflow.identity.models import Principal
from ksflow.lifecycle import events
from ksflow.workflows import runs


def page(principal: Principal, run_id: str, limit: int, offset: int) -> tuple[list[events.RunEvent], int]:
    run = runs.get_visible(principal, run_id)
    return (events.page(aws.table(settings().table_name), run.id, limit, offset, run.event_count),
            run.event_count)
