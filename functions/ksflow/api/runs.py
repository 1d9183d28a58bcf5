"""/v1/workflow-runs: read a run, its history, stop and retry it, and the runner's callback and heartbeat."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal, bearer_token
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.lifecycle import actions, heartbeats, history
from ksflow.lifecycle.events import RunEvent
from ksflow.workflows import runs
from ksflow.workflows.models import (
    CallbackRequest,
    CallbackResponse,
    HeartbeatRequest,
    WorkflowRunResponse,
    run_response,
)

router = APIGatewayHttpRouter()
TAGS = ["workflow-runs"]
Attempt = Annotated[int | None, Query(ge=1, le=1000, description="The attempt the message is for; "
                                                                  "without it, the current attempt")]


def _body(model: type[CallbackRequest] | type[HeartbeatRequest]) -> dict[str, object]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.get("/v1/workflow-runs/<run_id>", tags=TAGS, summary="Get a workflow run", responses=documented(200, 404))
def get_run(run_id: UUID, principal: CurrentPrincipal) -> WorkflowRunResponse:
    return run_response(runs.get_for_response(principal, str(run_id)))


@router.delete("/v1/workflow-runs/<run_id>", status_code=204, tags=TAGS, summary="Delete a workflow run record",
               description="Removes the record and frees its idempotency key; does not cancel the execution.",
               responses=documented(204, 404))
def delete_run(run_id: UUID, principal: CurrentPrincipal) -> None:
    runs.delete(principal, str(run_id))


@router.post("/v1/workflow-runs/<run_id>/stop", tags=TAGS, summary="Stop a workflow run",
             description="PENDING or RUNNING becomes FAILED (\"Stopped by user\"); no dispatch starts after it.",
             responses=documented(200, 403, 404, 409))
def stop_run(run_id: UUID, principal: CurrentPrincipal) -> WorkflowRunResponse:
    return run_response(actions.stop(principal, str(run_id)))


@router.post("/v1/workflow-runs/<run_id>/retry", status_code=202, tags=TAGS, summary="Retry a FAILED workflow run",
             description="Starts the run's next attempt with the same snapshot and time limit.",
             responses=documented(202, 403, 404, 409))
def retry_run(run_id: UUID, principal: CurrentPrincipal) -> Response[WorkflowRunResponse]:
    retried = actions.retry(principal, str(run_id))
    return Response(status_code=202, body=run_response(retried), content_type="application/json",
                    headers={"Location": f"/v1/workflow-runs/{retried.id}"})


@router.get("/v1/workflow-runs/<run_id>/events", tags=TAGS, summary="List a workflow run's events",
            description="Oldest first.", responses=documented(200, 404))
def list_run_events(run_id: UUID, principal: CurrentPrincipal, limit: Limit = 20,
                    offset: Offset = 0) -> Page[RunEvent]:
    page, total = history.page(principal, str(run_id), limit, offset)
    return Page[RunEvent](items=page, total=total, limit=limit, offset=offset)


@router.post("/v1/workflow-runs/<run_id>/callback", tags=TAGS, summary="Runner callback",
             description="Signed with the definition's webhook secret (Standard Webhooks) or an API key.",
             security=[{}, {"bearer": []}], openapi_extensions=_body(CallbackRequest),
             responses=documented(200, 404, 409))
def run_callback(run_id: UUID, attempt: Attempt = None) -> CallbackResponse:
    # The raw body is verified before it is parsed, so validation happens in the domain code.
    event = router.current_event
    status = runs.callback(str(run_id), event.headers, event.decoded_body or "", bearer_token(event.headers), attempt)
    return CallbackResponse(status=status)


@router.post("/v1/workflow-runs/<run_id>/heartbeat", tags=TAGS, summary="Runner heartbeat",
             description="Authenticated like the callback. Records progress; 409 tells the runner to stop.",
             security=[{}, {"bearer": []}], openapi_extensions=_body(HeartbeatRequest),
             responses=documented(200, 404, 409))
def run_heartbeat(run_id: UUID, attempt: Attempt = None) -> CallbackResponse:
    event = router.current_event
    status = heartbeats.heartbeat(str(run_id), event.headers, event.decoded_body or "", bearer_token(event.headers),
                                  attempt)
    return CallbackResponse(status=status)
