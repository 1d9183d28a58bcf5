"""The ksflow stack: data, orchestration and API constructs wired together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Aws, CfnOutput, Stack, Tags
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.api import Api
from infra.data import Data
from infra.deletion import Deletion
from infra.documents import Documents
from infra.lambda_asset import lambda_code
from infra.monitoring import Monitoring
from infra.orchestration import Orchestration
from infra.schedules import Schedules
from infra.settings import bundle_dependencies, environment_settings
from ksflow import catalog

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_WORKFLOW_ASL = PROJECT_ROOT / "functions" / "ksflow" / "orchestration" / catalog.RUN_STATE_MACHINE_FILE
INGESTION_ASL = PROJECT_ROOT / "functions" / "ksflow" / "orchestration" / catalog.INGESTION_STATE_MACHINE_FILE
DELETION_ASL = PROJECT_ROOT / "functions" / "ksflow" / "orchestration" / catalog.DELETION_STATE_MACHINE_FILE


class KsflowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = environment_settings(self.node)
        Tags.of(self).add("project", "ksflow")
        Tags.of(self).add("environment", settings.name)

        code = lambda_code(PROJECT_ROOT, bundle_dependencies=bundle_dependencies(self.node))
        self.data = Data(self, "Data", settings=settings)
        self.orchestration = Orchestration(
            self,
            "Orchestration",
            settings=settings,
            data=self.data,
            code=code,
            definition_file=RUN_WORKFLOW_ASL,
        )
        self.documents = Documents(
            self, "Documents", settings=settings, data=self.data, code=code, definition_file=INGESTION_ASL
        )
        self.api = Api(self, "Api", settings=settings, data=self.data, orchestration=self.orchestration, code=code)
        self.documents.serve_api(self.api.function, self.api.http_api.api_endpoint)
        self.deletion = Deletion(self, "Deletion", settings=settings, data=self.data, documents=self.documents,
                                 code=code, definition_file=DELETION_ASL)
        self.deletion.serve_api(self.api.function)
        self.schedules = Schedules(self, "Schedules", settings=settings, data=self.data,
                                   orchestration=self.orchestration, documents=self.documents, code=code)
        self.schedules.serve_api(self.api.function)
        for reader in (self.api.function, self.orchestration.dispatcher):
            self.documents.serve_run_snapshots(reader)
        # Callback URLs handed to runners point at the public API. Only the API resource's id is
        # referenced, so this adds no cycle with the state machine the API function starts.
        self.orchestration.dispatcher.add_environment("PUBLIC_API_URL", self.api.url)

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            http_api=self.api.http_api,
            functions={
                "Api": self.api.function.function,
                "Dispatcher": self.orchestration.dispatcher.function,
                "RunFailure": self.orchestration.run_failure.function,
                "Expiry": self.orchestration.expiry.function,
                "Reconcile": self.orchestration.reconcile.function,
                "Ingest": self.documents.ingest.function,
                "IngestionFailure": self.documents.ingestion_failure.function,
                "ScheduleFire": self.schedules.fire.function,
                "DeleteBatch": self.deletion.delete_batch.function,
            },
            state_machines={
                "RunStateMachine": self.orchestration.state_machine,
                "IngestionStateMachine": self.documents.state_machine,
                "DeletionStateMachine": self.deletion.state_machine,
            },
            dead_letter_queues={
                "ExpirySchedules": self.orchestration.scheduler_dlq,
                "ExecutionStatusRule": self.orchestration.reconcile_dlq,
                "ExpiryFailedInvocations": self.orchestration.expiry_failures,
                "ReconcileFailedInvocations": self.orchestration.reconcile_failures,
                "DefinitionSchedules": self.schedules.dead_letter_queue,
                "ScheduleFireFailedInvocations": self.schedules.fire_failures,
            },
            table=self.data.table,
            settings=settings,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the ksflow API")
        CfnOutput(self, "TableName", value=self.data.table.table_name)
        CfnOutput(self, "StateMachineArn", value=self.orchestration.state_machine_arn)
        CfnOutput(self, "IngestionStateMachineArn", value=self.documents.state_machine.state_machine_arn)
        CfnOutput(self, "DocumentsBucketName", value=self.documents.bucket.bucket_name)
        CfnOutput(self, "Region", value=Aws.REGION)
        CfnOutput(self, "DefinitionScheduleGroupName", value=self.schedules.group_name,
                  description="EventBridge Scheduler group of scheduled definitions (ksflow admin fire-schedule)")


def add_stack(app: cdk.App) -> KsflowStack:
    """The stack for the environment selected by `-c env=...`, checked by cdk-nag when the app synthesizes."""
    settings = environment_settings(app.node)
    stack = KsflowStack(
        app,
        settings.stack_name,
        description=f"ksflow workflow API ({settings.name})",
        # No `env`: the template is environment-agnostic (no lookups are needed), so it is the same
        # wherever it is synthesized and deploys to the account/region of the deploying credentials.
    )
    # Every synth is checked; findings are fixed or acknowledged next to the resource they concern.
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stack
