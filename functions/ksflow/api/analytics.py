"""Run summaries and admin analytics: `/v1/workflow-runs/summary` and `/v1/admin/workflows/*`.

All of them fold the run aggregates of their window (`ksflow.analytics.reports`), never runs.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.analytics import reports
from ksflow.analytics.buckets import TimeBucket
from ksflow.analytics.reports import Scope, Window
from ksflow.analytics.summary import (
    HourHistogramResponse,
    RunTimeseriesResponse,
    WorkflowLeaderboardResponse,
    WorkflowRunSummaryResponse,
)
from ksflow.api.auth import CurrentPrincipal
from ksflow.api.listing_params import UtcDatetime
from ksflow.api.responses import documented
from ksflow.errors import Forbidden
from ksflow.identity.models import Principal
from ksflow.workflows import definitions

router = APIGatewayHttpRouter()
ADMIN_TAGS = ["admin-workflows"]

DefinitionId = Annotated[UUID | None, Query(description="Scope every number to one workflow definition")]
Since = Annotated[UtcDatetime | None, Query(description="Window start (inclusive); defaults to 7 days ago")]
Until = Annotated[UtcDatetime | None, Query(description="Window end (inclusive); defaults to open-ended (now)")]
TimeZone = Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone of the buckets")]


def _scope(principal: Principal, definition_id: UUID | None) -> Scope:
    """What the caller may read: a visible definition (404 otherwise), its tenant, or its own definitions' runs."""
    if definition_id is not None:
        return Scope(principal.tenant_id, definition_id=definitions.get_visible(principal, str(definition_id)).id)
    return Scope(principal.tenant_id, owner_id=None if principal.is_admin else principal.user_id)


def _admin_scope(principal: Principal, definition_id: UUID | None = None) -> Scope:
    if not principal.is_admin:
        raise Forbidden("Workflow analytics are for the tenant's OWNER and ADMINs")
    return _scope(principal, definition_id)


@router.get("/v1/workflow-runs/summary", tags=["workflow-runs"], summary="Summarise the runs the caller can read",
            description="Counts, failure rate and durations of runs created in the window (default: 7 days). "
                        "Windows resolve to whole 15-minute buckets.",
            responses=documented(200, 404))
def get_workflow_runs_summary(principal: CurrentPrincipal, definition_id: DefinitionId = None, since: Since = None,
                              until: Until = None) -> WorkflowRunSummaryResponse:
    return reports.run_summary(_scope(principal, definition_id), Window.of(since, until))


@router.get("/v1/admin/workflows/summary", tags=ADMIN_TAGS, summary="Tenant-wide run health",
            responses=documented(200, 403, 404))
def get_admin_workflow_summary(principal: CurrentPrincipal, definition_id: DefinitionId = None, since: Since = None,
                               until: Until = None) -> WorkflowRunSummaryResponse:
    return reports.run_summary(_admin_scope(principal, definition_id), Window.of(since, until))


@router.get("/v1/admin/workflows/timeseries", tags=ADMIN_TAGS, summary="Runs created over time",
            responses=documented(200, 403, 404))
def get_admin_workflow_timeseries(principal: CurrentPrincipal, timezone: TimeZone = "UTC",
                                  definition_id: DefinitionId = None,
                                  bucket: Annotated[TimeBucket, Query(description="Bucket size")] = TimeBucket.DAY,
                                  since: Since = None, until: Until = None) -> RunTimeseriesResponse:
    return reports.timeseries(_admin_scope(principal, definition_id), Window.of(since, until), bucket, timezone)


@router.get("/v1/admin/workflows/by-hour", tags=ADMIN_TAGS, summary="Runs created per hour of day",
            responses=documented(200, 403, 404))
def get_admin_workflow_by_hour(principal: CurrentPrincipal, timezone: TimeZone = "UTC",
                               definition_id: DefinitionId = None, since: Since = None,
                               until: Until = None) -> HourHistogramResponse:
    return reports.by_hour(_admin_scope(principal, definition_id), Window.of(since, until), timezone)


@router.get("/v1/admin/workflows/leaderboard", tags=ADMIN_TAGS, summary="Top workflows and top invokers",
            responses=documented(200, 403))
def get_admin_workflow_leaderboard(principal: CurrentPrincipal,
                                   limit: Annotated[int, Query(ge=1, le=50, description="Top-N per leaderboard")] = 10,
                                   since: Since = None, until: Until = None) -> WorkflowLeaderboardResponse:
    return reports.leaderboard(_admin_scope(principal).tenant_id, Window.of(since, until), limit)
