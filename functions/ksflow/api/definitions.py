"""/v1/workflow-definitions: create, list, read, replace, delete, invoke, and list a definition's runs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.workflows import definitions, runs
from ksflow.workflows.models import (
    CreateWorkflowDefinitionRequest,
    InvokeWorkflowRequest,
    WorkflowDefinitionResponse,
    WorkflowRunResponse,
    run_response,
)

router = APIGatewayHttpRouter()
TAGS = ["workflow-definitions"]


@router.post("/v1/workflow-definitions", status_code=201, tags=TAGS, summary="Create a workflow definition",
             responses=documented(201))
def create_definition(request: CreateWorkflowDefinitionRequest,
                      principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.create(principal, request))


@router.get("/v1/workflow-definitions", tags=TAGS, summary="List workflow definitions", responses=documented(200))
def list_definitions(principal: CurrentPrincipal, limit: Limit = 20,
                     offset: Offset = 0) -> Page[WorkflowDefinitionResponse]:
    visible = definitions.list_visible(principal)
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


@router.get("/v1/workflow-definitions/<definition_id>/runs", tags=TAGS, summary="List a definition's runs",
            description="Newest first.", responses=documented(200, 404))
def list_runs(definition_id: UUID, principal: CurrentPrincipal, limit: Limit = 20,
              offset: Offset = 0) -> Page[WorkflowRunResponse]:
    page, total = runs.list_for_definition(principal, str(definition_id), limit, offset)
    return Page[WorkflowRunResponse](items=[run_response(r) for r in page], total=total, limit=limit, offset=offset)
