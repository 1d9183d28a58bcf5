"""Run listings: `GET /v1/workflow-runs` (the tenant's runs, filtered) and `GET /v1/workflow-definitions/{id}/runs`.

What each filter costs is in `ksflow.runindex.listing`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.listing_params import (
    CreatedAfter,
    CreatedBefore,
    DateRange,
    SortDir,
    SortDirection,
    UpdatedAfter,
    UpdatedBefore,
)
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.errors import Invalid
from ksflow.identity.models import Principal
from ksflow.runindex import listing
from ksflow.runindex.listing import RunFilters, RunOrder
from ksflow.workflows.models import RunStatus, RunTrigger, WorkflowRunResponse, run_response

router = APIGatewayHttpRouter()

# Knowledge Stack's name for RUNNING.
_ALIASES = {"IN_PROGRESS": RunStatus.RUNNING}

SortBy = Annotated[RunOrder | None, Query(description="Field to sort runs by (default: CREATED_AT)")]
Statuses = Annotated[list[str] | None, Query(
    description="Keep only runs in these states (repeatable; PENDING, RUNNING (or IN_PROGRESS), COMPLETED, FAILED)")]


def _statuses(*given: list[str] | None) -> frozenset[RunStatus]:
    wanted: set[RunStatus] = set()
    for name, values in zip(("status", "state"), given, strict=True):
        for value in values or []:
            status = _ALIASES.get(value.upper()) or RunStatus.__members__.get(value.upper())
            if status is None:
                raise Invalid(["query", name], f"Unknown run status {value[:64]!r}", "enum")
            wanted.add(status)
    return frozenset(wanted)


def _filters(dates: DateRange, sort_by: RunOrder | None, sort_dir: SortDirection | None, **given: object) -> RunFilters:
    return RunFilters(**given, **dates.__dict__, order=sort_by or RunOrder.CREATED_AT,  # type: ignore[arg-type]
                      descending=sort_dir != SortDirection.ASC)


def _page(principal: Principal, filters: RunFilters, limit: int, offset: int) -> Page[WorkflowRunResponse]:
    found, total = listing.page(principal, filters, limit, offset)
    return Page[WorkflowRunResponse](items=[run_response(r) for r in found], total=total, limit=limit, offset=offset)


@router.get("/v1/workflow-runs", tags=["workflow-runs"], summary="List workflow runs across the tenant",
            description="OWNER/ADMIN see every run of the tenant; a USER the runs of the definitions it created.",
            responses=documented(200, 404))
def list_workflow_runs(principal: CurrentPrincipal, status: Statuses = None, state: Statuses = None,
                       mine: Annotated[bool, Query(description="Only runs the caller invoked")] = False,
                       definition_id: Annotated[UUID | None, Query(description="Only runs of this definition")] = None,
                       invoked_by: Annotated[UUID | None, Query(description="Only runs this user invoked")] = None,
                       owner_id: Annotated[UUID | None, Query(description="Alias of invoked_by")] = None,
                       trigger: Annotated[RunTrigger | None, Query(description="MANUAL or SCHEDULE")] = None,
                       sort_by: SortBy = None, sort_dir: SortDir = None,
                       created_after: CreatedAfter = None, created_before: CreatedBefore = None,
                       updated_after: UpdatedAfter = None, updated_before: UpdatedBefore = None,
                       limit: Limit = 20, offset: Offset = 0) -> Page[WorkflowRunResponse]:
    invoker = principal.user_id if mine else str(invoked_by or owner_id or "") or None
    dates = DateRange(created_after, created_before, updated_after, updated_before)
    filters = _filters(dates, sort_by, sort_dir, statuses=_statuses(status, state), trigger=trigger,
                       definition_id=str(definition_id) if definition_id else None, invoked_by=invoker)
    return _page(principal, filters, limit, offset)


@router.get("/v1/workflow-definitions/<definition_id>/runs", tags=["workflow-definitions"],
            summary="List a definition's runs", description="Newest first unless sorted otherwise.",
            responses=documented(200, 404))
def list_runs(definition_id: UUID, principal: CurrentPrincipal, sort_by: SortBy = None, sort_dir: SortDir = None,
              created_after: CreatedAfter = None, created_before: CreatedBefore = None,
              updated_after: UpdatedAfter = None, updated_before: UpdatedBefore = None,
              limit: Limit = 20, offset: Offset = 0) -> Page[WorkflowRunResponse]:
    dates = DateRange(created_after, created_before, updated_after, updated_before)
    return _page(principal, _filters(dates, sort_by, sort_dir, definition_id=str(definition_id)), limit, offset)
