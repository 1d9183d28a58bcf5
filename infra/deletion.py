"""Background deletion: the state machine that finishes deletes too large for one API request.

Its one task removes a bounded batch of a deleted folder's or document's subtree per invocation
(`ksflow.deletion.cascade`): path parts and their items, grants, ingestion records, chunks and
stored file versions. Its role holds exactly what that code calls.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagSuppressions
from constructs import Construct

from infra import nag
from infra.data import INGESTION_LISTING_PARTITIONS, TENANT_PARTITIONS, Data
from infra.documents import OBJECT_PREFIX, Documents
from infra.function import KsflowFunction
from infra.settings import EnvironmentSettings
from infra.state_machine import asl_state_machine
from ksflow import catalog

# Parts found through name claims and read in batches; folders marked `deleting` (UpdateItem); items,
# grants and chunks removed in batches; an open ingestion cancelled (UpdateItem) and read again (GetItem);
# ingestion records deleted in transactions with their listing entries and count (ingestion/store.py).
DELETE_BATCH_TABLE_ACTIONS = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem",
                              "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]


class Deletion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        documents: Documents,
        code: lambda_.Code,
        definition_file: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.delete_batch = KsflowFunction(
            self,
            "DeleteBatchFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["DeleteBatch"],
            description="Removes a bounded batch of a deleted folder's or document's subtree, deepest parts first",
            environment={"TABLE_NAME": data.table.table_name, "DOCUMENTS_BUCKET": documents.bucket.bucket_name,
                         "INGESTION_STATE_MACHINE_ARN": documents.state_machine.state_machine_arn},
            timeout=Duration.seconds(120),
            memory_size=512,
        )
        fn = self.delete_batch
        data.grant_items(fn, DELETE_BATCH_TABLE_ACTIONS, partitions=(*TENANT_PARTITIONS, *INGESTION_LISTING_PARTITIONS))
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[documents.objects_arn]))
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucketVersions"], resources=[documents.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{OBJECT_PREFIX}*"]}}))
        # Open ingestions of deleted versions are stopped (best effort: their record is cancelled first).
        documents.state_machine.grant_execution(fn.function, "states:StopExecution")

        self.state_machine, self.state_machine_log_group = asl_state_machine(
            self,
            "DeletionStateMachine",
            settings=settings,
            definition_file=definition_file,
            comment="Finishes the delete of a folder or document, one bounded batch per task",
            substitutions=catalog.DELETION_STATE_MACHINE_SUBSTITUTIONS,
            functions={"DeleteBatch": fn},
        )
        NagSuppressions.add_resource_suppressions(
            fn.role,
            [nag.table_key_use(), nag.document_objects("s3:DeleteObject/DeleteObjectVersion"),
             nag.ingestion_executions("states:StopExecution")],
            apply_to_children=True,
        )

    def serve_api(self, api: KsflowFunction) -> None:
        """The API hands what a delete request could not finish to the state machine."""
        api.add_environment("DELETION_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
        self.state_machine.grant_start_execution(api.function)
