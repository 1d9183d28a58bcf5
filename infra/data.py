"""State: the single DynamoDB table and the KMS keys that protect it and the webhook secrets."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import EnvironmentSettings

GSI1 = "gsi1"
TTL_ATTRIBUTE = "expires_at"


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings) -> None:
        super().__init__(scope, construct_id)
        pending_window = Duration.days(30 if settings.retain else 7)
        self.table_key = kms.Key(
            self,
            "TableKey",
            description="ksflow: encryption at rest of the ksflow table",
            enable_key_rotation=True,
            pending_window=pending_window,
            removal_policy=settings.removal_policy,
        )
        # A separate key for webhook secrets: only the API (encrypt) and the dispatcher (decrypt) may use
        # it, while every function that touches the table needs the table key.
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description="ksflow: envelope encryption of workflow definitions' webhook secrets",
            enable_key_rotation=True,
            pending_window=pending_window,
            removal_policy=settings.removal_policy,
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.table_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=settings.deletion_protection,
            removal_policy=settings.removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=GSI1,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
