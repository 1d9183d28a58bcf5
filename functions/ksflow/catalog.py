"""The deployable pieces every environment shares: function handlers and state machine files.

CDK deploys these and the local stack provisions them on moto, so both run the same
handlers and the same ASL.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

HANDLERS = {
    "Api": "ksflow.api.handler.lambda_handler",
    "Dispatcher": "ksflow.orchestration.dispatcher.lambda_handler",
    "RunFailure": "ksflow.orchestration.run_failure.lambda_handler",
    "Expiry": "ksflow.orchestration.expiry.lambda_handler",
    "Reconcile": "ksflow.orchestration.reconcile.lambda_handler",
    "Ingest": "ksflow.ingestion.pipeline.lambda_handler",
    "IngestionFailure": "ksflow.ingestion.failure.lambda_handler",
    "ScheduleFire": "ksflow.schedules.fire.lambda_handler",
    "DeleteBatch": "ksflow.deletion.handler.lambda_handler",
}

RUN_STATE_MACHINE_FILE = "run_workflow.asl.json"
# ASL placeholder -> function whose ARN replaces it.
RUN_STATE_MACHINE_SUBSTITUTIONS = {"DispatcherFunctionArn": "Dispatcher", "RunFailureFunctionArn": "RunFailure"}

INGESTION_STATE_MACHINE_FILE = "ingest_document.asl.json"
INGESTION_STATE_MACHINE_SUBSTITUTIONS = {"IngestFunctionArn": "Ingest",
                                         "IngestionFailureFunctionArn": "IngestionFailure"}

DELETION_STATE_MACHINE_FILE = "delete_subtree.asl.json"
DELETION_STATE_MACHINE_SUBSTITUTIONS = {"DeleteBatchFunctionArn": "DeleteBatch"}


def asl_text(file_name: str) -> str:
    return resources.files("ksflow.orchestration").joinpath(file_name).read_text()


def render_asl(file_name: str, substitutions: dict[str, str]) -> dict[str, Any]:
    """The ASL with `${Name}` placeholders replaced, as CDK's definition_substitutions does."""
    text = asl_text(file_name)
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"{file_name} has unsubstituted placeholders")
    document: dict[str, Any] = json.loads(text)
    return document
