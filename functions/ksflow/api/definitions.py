"""/v1/workflow-definitions: create, read, invoke."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
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


@router.post("/v1/workflow-definitions", status_code=201, tags=TAGS, summary="Create a workflow definition")
def create_definition(request: CreateWorkflowDefinitionRequest,
                      principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.create(principal, request))


@router.get("/v1/workflow-definitions/<definition_id>", tags=TAGS, summary="Get a workflow definition")
def get_definition(definition_id: UUID, principal: CurrentPrincipal) -> WorkflowDefinitionResponse:
    return definitions.response(definitions.get_visible(principal, str(definition_id)))


@router.post("/v1/workflow-definitions/<definition_id>/invoke", status_code=202, tags=TAGS,
             summary="Invoke a workflow definition")
def invoke_definition(definition_id: UUID, principal: CurrentPrincipal,
                      request: Annotated[InvokeWorkflowRequest | None, Body()] = None) -> WorkflowRunResponse:
    key = request.idempotency_key if request else None
    return run_response(runs.invoke(principal, str(definition_id), key))
