"""/v1/workflows/{workflow_id}: execution status and cancel of a run (`run-...`) or an ingestion (`ingest-...`)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.responses import documented
from ksflow.errors import NotFound
from ksflow.ingestion import service as ingestion
from ksflow.ingestion.models import WORKFLOW_PREFIX as INGESTION_PREFIX
from ksflow.lifecycle import actions
from ksflow.workflows import runs, status
from ksflow.workflows.models import run_id_of

router = APIGatewayHttpRouter()
TAGS = ["workflows"]
WorkflowId = Annotated[str, Path(min_length=1, max_length=200)]


def _run_id(workflow_id: str) -> str:
    run_id = run_id_of(workflow_id)
    if run_id is None:
        raise NotFound("Workflow not found")
    return run_id


@router.get("/v1/workflows/<workflow_id>", tags=TAGS, summary="Get a workflow's execution status",
            responses=documented(200, 404))
def get_workflow_status(workflow_id: WorkflowId, principal: CurrentPrincipal) -> status.WorkflowStatusResponse:
    if workflow_id.startswith(INGESTION_PREFIX):
        return ingestion.status_response(ingestion.get_visible(principal, workflow_id))
    return status.run_status(runs.get_visible(principal, _run_id(workflow_id)))


@router.delete("/v1/workflows/<workflow_id>", tags=TAGS, summary="Cancel a workflow",
               responses=documented(200, 403, 404, 409))
def cancel_workflow(workflow_id: WorkflowId, principal: CurrentPrincipal) -> status.WorkflowCancelResponse:
    if workflow_id.startswith(INGESTION_PREFIX):
        cancelled = ingestion.cancel(principal, workflow_id)
        return status.WorkflowCancelResponse(workflow_id=cancelled.workflow_id,
                                             message="Cancellation requested; the ingestion is cancelled")
    run = actions.stop(principal, _run_id(workflow_id), cancel=True)
    return status.WorkflowCancelResponse(workflow_id=run.workflow_id,
                                         message="Cancellation requested; the run is FAILED (cancelled)")
