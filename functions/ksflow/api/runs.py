"""/v1/workflow-runs: read a run, and the runner's callback."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal, bearer_token
from ksflow.api.responses import documented
from ksflow.workflows import runs
from ksflow.workflows.models import CallbackRequest, CallbackResponse, WorkflowRunResponse, run_response

router = APIGatewayHttpRouter()
TAGS = ["workflow-runs"]

_CALLBACK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CallbackRequest.model_json_schema()}},
    },
}


@router.get("/v1/workflow-runs/<run_id>", tags=TAGS, summary="Get a workflow run", responses=documented(200, 404))
def get_run(run_id: UUID, principal: CurrentPrincipal) -> WorkflowRunResponse:
    return run_response(runs.get_for_response(principal, str(run_id)))


@router.delete("/v1/workflow-runs/<run_id>", status_code=204, tags=TAGS, summary="Delete a workflow run record",
               description="Removes the record and frees its idempotency key; does not cancel the execution.",
               responses=documented(204, 404))
def delete_run(run_id: UUID, principal: CurrentPrincipal) -> None:
    runs.delete(principal, str(run_id))


@router.post("/v1/workflow-runs/<run_id>/callback", tags=TAGS, summary="Runner callback",
             description="Signed with the definition's webhook secret (Standard Webhooks) or an API key.",
             security=[{}, {"bearer": []}], openapi_extensions=_CALLBACK_BODY, responses=documented(200, 404, 409))
def run_callback(run_id: UUID) -> CallbackResponse:
    # The raw body is verified before it is parsed, so validation happens in the domain code.
    event = router.current_event
    status = runs.callback(str(run_id), event.headers, event.decoded_body or "", bearer_token(event.headers))
    return CallbackResponse(status=status)

