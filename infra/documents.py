"""Documents and their ingestion: the file bucket, the ingestion task functions and state machine.

The bucket is versioned and encrypted with its own customer-managed key (rotated), blocks
public access, refuses plain HTTP, and logs access to a separate log bucket. Every function
reaches only the `tenants/` prefix, and only with the actions its code performs.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import checkov, nag
from infra.data import TENANT_PARTITIONS, Data
from infra.function import KsflowFunction
from infra.settings import EnvironmentSettings
from infra.state_machine import asl_state_machine
from ksflow import catalog
from ksflow.uploads.objects import PENDING_TAG_KEY

OBJECT_PREFIX = "tenants/"
# Run snapshots too large for their run item (functions/ksflow/workflows/snapshots.py).
RUN_SNAPSHOT_OBJECTS = f"{OBJECT_PREFIX}*/run-snapshots/*"
NONCURRENT_VERSION_DAYS = 30
# Direct uploads never completed: their parts, and objects still tagged pending (lifecycle rules count whole days).
ABANDONED_UPLOAD_DAYS = 1
ACCESS_LOG_DAYS = 365
ACCESS_LOG_BUCKET_IS_NOT_LOGGED = (
    "This is the access log bucket of the documents bucket; logging it into itself would loop, and into "
    "another bucket would only move the question."
)


class Documents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        code: lambda_.Code,
        definition_file: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self._cors_origins = settings.upload_cors_origins
        self.key = kms.Key(
            self,
            "Key",
            description="ksflow: encryption at rest of uploaded documents",
            enable_key_rotation=True,
            pending_window=Duration.days(30 if settings.retain else 7),
            removal_policy=settings.removal_policy,
        )
        # Server access logs cannot be delivered to a bucket encrypted with a customer key: SSE-S3.
        # Versioned, so a deleted or overwritten log can be recovered for as long as logs are kept.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(
                expiration=Duration.days(ACCESS_LOG_DAYS),
                noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
            )],
            removal_policy=settings.removal_policy,
            # Dev only: `make destroy` empties the versioned buckets first; prod keeps them and their data.
            auto_delete_objects=not settings.retain,
        )
        NagSuppressions.add_resource_suppressions(
            self.access_logs, [NagPackSuppression(id="AwsSolutions-S1", reason=ACCESS_LOG_BUCKET_IS_NOT_LOGGED)]
        )
        checkov.skip(self.access_logs, "CKV_AWS_18", ACCESS_LOG_BUCKET_IS_NOT_LOGGED)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="documents/",
            # Deletes remove every version themselves; this only bounds what an overwrite leaves behind,
            # and removes what direct uploads left unfinished (see functions/ksflow/uploads/objects.py).
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(ABANDONED_UPLOAD_DAYS),
                ),
                s3.LifecycleRule(
                    prefix=OBJECT_PREFIX,
                    tag_filters={PENDING_TAG_KEY: "pending"},
                    expiration=Duration.days(ABANDONED_UPLOAD_DAYS),
                    noncurrent_version_expiration=Duration.days(ABANDONED_UPLOAD_DAYS),
                ),
            ],
            removal_policy=settings.removal_policy,
            auto_delete_objects=not settings.retain,
        )
        self.objects_arn = self.bucket.arn_for_objects(f"{OBJECT_PREFIX}*")
        if not settings.retain:
            _explain_auto_delete_provider(self)

        # --- Ingestion tasks ---
        self.ingest = KsflowFunction(
            self,
            "IngestFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["Ingest"],
            description="Reads a range of an uploaded document version, extracts its text, chunks and stores it",
            environment={"TABLE_NAME": data.table.table_name, "DOCUMENTS_BUCKET": self.bucket.bucket_name},
            # A range ends early when a minute is left (functions/ksflow/ingestion/ranges.py).
            timeout=Duration.minutes(15),
            memory_size=2048,
        )
        # Ingestions and chunks live in the tenants' partitions; users and keys do not.
        data.grant_items(
            self.ingest,
            # Chunks are written in transactions fenced by a check on the ingestion record; a rerun that completes
            # removes the chunks an earlier layout kept in the tenant's partition in batches.
            ["dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
             "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"],
            partitions=TENANT_PARTITIONS,
        )
        self.ingest.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.objects_arn])
        )
        self.key.grant_decrypt(self.ingest.function)

        self.ingestion_failure = KsflowFunction(
            self,
            "IngestionFailureFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["IngestionFailure"],
            description="Records why an ingestion's task crashed or timed out, unless the ingestion already ended",
            environment={"TABLE_NAME": data.table.table_name},
            timeout=Duration.seconds(30),
            memory_size=256,
        )
        data.grant_items(self.ingestion_failure, ["dynamodb:UpdateItem"], partitions=TENANT_PARTITIONS)

        # --- The ingestion state machine, from the ASL file the local stack also runs ---
        self.state_machine, self.state_machine_log_group = asl_state_machine(
            self,
            "IngestionStateMachine",
            settings=settings,
            definition_file=definition_file,
            comment="Ingests one document version: extract text, chunk, store chunks",
            substitutions=catalog.INGESTION_STATE_MACHINE_SUBSTITUTIONS,
            functions={"Ingest": self.ingest, "IngestionFailure": self.ingestion_failure},
        )

        NagSuppressions.add_resource_suppressions(
            [self.ingest.role, self.ingestion_failure.role], [nag.table_key_use()], apply_to_children=True
        )
        NagSuppressions.add_resource_suppressions(
            self.ingest.role, [nag.document_objects("s3:GetObject")], apply_to_children=True
        )

    def serve_api(self, api: KsflowFunction, api_origin: str) -> None:
        """What the API function needs for uploads, reruns, cancels and deletes, and where to find it.

        Direct uploads: the API signs part URLs and download links with its own role, so the role holds
        what those requests do (UploadPart is s3:PutObject; under SSE-KMS it needs kms:Decrypt too), and
        what completing calls. Browsers on the API's origin (and the environment's `upload_cors_origins`)
        may PUT parts and read the ETag S3 answers.
        """
        api.add_environment("DOCUMENTS_BUCKET", self.bucket.bucket_name)
        api.add_environment("INGESTION_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
        fn = api.function
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self.objects_arn],
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload",
                         "s3:PutObjectTagging", "s3:DeleteObjectTagging"],
                resources=[self.objects_arn],
            )
        )
        self.bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET],
            allowed_origins=[api_origin, *self._cors_origins],
            allowed_headers=["content-type", "content-length", "content-md5"],
            exposed_headers=["ETag"],
            max_age=3600,
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucketVersions"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{OBJECT_PREFIX}*"]}},
            )
        )
        # PutObject under SSE-KMS has S3 generate a data key on the caller's behalf; parts of a multipart
        # upload and downloads have S3 decrypt it.
        self.key.grant(fn, "kms:GenerateDataKey", "kms:Decrypt")
        self.state_machine.grant_start_execution(fn)
        self.state_machine.grant_execution(fn, "states:StopExecution", "states:DescribeExecution")
        NagSuppressions.add_resource_suppressions(
            api.role,
            [
                nag.document_objects("s3:PutObject/DeleteObject/DeleteObjectVersion/GetObject/"
                                     "ListMultipartUploadParts/AbortMultipartUpload/PutObjectTagging/"
                                     "DeleteObjectTagging"),
                nag.ingestion_executions("states:StopExecution/DescribeExecution"),
            ],
            apply_to_children=True,
        )

    def serve_run_snapshots(self, reader: KsflowFunction) -> None:
        """Lets `reader` read the run snapshots kept in the bucket (the API writes them under its uploads grant)."""
        reader.add_environment("DOCUMENTS_BUCKET", self.bucket.bucket_name)
        reader.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(RUN_SNAPSHOT_OBJECTS)])
        )
        self.key.grant_decrypt(reader.function)
        NagSuppressions.add_resource_suppressions(reader.role, [nag.run_snapshots("s3:GetObject")],
                                                  apply_to_children=True)

    def serve_run_snapshot_writes(self, writer: KsflowFunction) -> None:
        """Lets a function that invokes definitions (other than the API) keep and remove large run snapshots."""
        self.serve_run_snapshots(writer)
        writer.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"],
                                resources=[self.bucket.arn_for_objects(RUN_SNAPSHOT_OBJECTS)])
        )
        # PutObject under SSE-KMS has S3 generate a data key on the caller's behalf.
        self.key.grant(writer.function, "kms:GenerateDataKey")
        NagSuppressions.add_resource_suppressions(writer.role, [nag.run_snapshots("s3:PutObject/DeleteObject")],
                                                  apply_to_children=True)


AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"
AUTO_DELETE_PROVIDER = (
    "CDK's provider that empties the dev buckets when the stack is deleted: CloudFormation invokes it "
    "synchronously during that one operation and reports its failure; it calls only the S3 API."
)


def _explain_auto_delete_provider(scope: Construct) -> None:
    """The dev-only provider function comes from CDK, so its checkov findings are explained here."""
    provider = Stack.of(scope).node.find_child(AUTO_DELETE_PROVIDER_ID)
    handler = provider.node.find_child("Handler")
    for check_id in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"):
        checkov.skip(handler, check_id, AUTO_DELETE_PROVIDER)
