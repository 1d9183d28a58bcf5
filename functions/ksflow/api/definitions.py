"""/v1/workflow-definitions: create, list, read, replace, delete, invoke, and list a definition's runs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
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
from ksflow.workflows import definitions, runs
from ksflow.workflows.definitions import WorkflowDefinitionOrder
from ksflow.workflows.models import (
    CreateWorkflowDefinitionRequest,
    InvokeWorkflowRequest,
    WorkflowDefinitionResponse,
    WorkflowRunResponse,
    run_response,
)

router = APIGatewayHttpRouter()
TAGS = ["workflow-definitions"]

Mine = Annotated[bool, Query(description="Only definitions the caller created")]
Search = Annotated[str | None, Query(max_length=255,
                                     description="Case-insensitive substring of the name or the description")]
DefinitionSortBy = Annotated[WorkflowDefinitionOrder, Query(
    description="Field to sort definitions by; unless sort_dir says otherwise, dates list newest first and NAME A "
                "to Z (ignoring case)")]


@router.post("/v1/workflow-definitions", status_code=201, tags=TAGS, summary="Create a workflow definition",
             responses=documented(201))
def create_definition(request: CreateWorkflowDefinitionRequest,
                      principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.create(principal, request))


@router.get("/v1/workflow-definitions", tags=TAGS, summary="List workflow definitions",
            description="OWNER/ADMIN see the tenant's definitions, a USER its own. Equal sort values are ordered "
                        "by id, in the same direction, so pages neither repeat nor skip.", responses=documented(200))
def list_definitions(principal: CurrentPrincipal, limit: Limit = 20, offset: Offset = 0, mine: Mine = False,
                     search: Search = None, sort_by: DefinitionSortBy = WorkflowDefinitionOrder.CREATED_AT,
                     sort_dir: SortDir = None, created_after: CreatedAfter = None, created_before: CreatedBefore = None,
                     updated_after: UpdatedAfter = None,
                     updated_before: UpdatedBefore = None) -> Page[WorkflowDefinitionResponse]:
    dates = DateRange(created_after, created_before, updated_after, updated_before)
    direction = sort_dir or (SortDirection.ASC if sort_by == WorkflowDefinitionOrder.NAME else SortDirection.DESC)
    visible = definitions.list_visible(principal, mine=mine, search=search, within=dates.contains, order=sort_by,
                                       descending=direction == SortDirection.DESC)
    return Page[WorkflowDefinitionResponse](
        items=[definitions.response(d) for d in visible[offset:offset + limit]], total=len(visible),
        limit=limit, offset=offset,
    )


@router.get("/v1/workflow-definitions/<definition_id>", tags=TAGS, summary="Get a workflow definition",
            responses=documented(200, 404))
def get_definition(definition_id: UUID, principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.get_visible(principal, str(definition_id)))


@router.put("/v1/workflow-definitions/<definition_id>", tags=TAGS, summary="Replace a workflow definition",
            description="Full replacement: omitted optional fields are reset; a runner needs its secret again.",
            responses=documented(200, 404))
def replace_definition(definition_id: UUID, request: CreateWorkflowDefinitionRequest,
                       principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.replace(principal, str(definition_id), request))


@router.delete("/v1/workflow-definitions/<definition_id>", status_code=204, tags=TAGS,
               summary="Delete a workflow definition and its runs", responses=documented(204, 404, 409))
def delete_definition(definition_id: UUID, principal: CurrentPrincipal) -> None:
    definitions.delete(principal, str(definition_id))


@router.post("/v1/workflow-definitions/<definition_id>/invoke", status_code=202, tags=TAGS,
             summary="Invoke a workflow definition", responses=documented(202, 404, 409))
def invoke_definition(definition_id: UUID, principal: CurrentPrincipal,
                      request: Annotated[InvokeWorkflowRequest | None, Body()] = None) -> WorkflowRunResponse:
    key = request.idempotency_key if request else None
    return run_response(runs.invoke(principal, str(definition_id), key))
