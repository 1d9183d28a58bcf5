"""State: the single DynamoDB table and the KMS keys that protect it and the webhook secrets.

Table access is granted per function: only the item actions its code calls, and, for every function but
the API, only in the partitions it works in (a `dynamodb:LeadingKeys` allow-list). Identity items live in
partitions of their own (`APIKEY#`, `IDENTITY#`), which only the API may write; the schedule fire function
reads `IDENTITY#` (a definition's creator and its role), and no other function reaches them.

Besides gsi1, the table has the run indexes (`ksflow.runindex.layout`) the environment's `run_index_count`
says: the first N of `RUN_INDEXES`, since CloudFormation adds one index per stack update.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.function import KsflowFunction
from infra.settings import EnvironmentSettings
from ksflow.runindex import layout

GSI1 = "gsi1"
# Set only on items that must expire (webhook replay claims, and upload sessions as they come); runs never
# expire: deleting them by TTL would leave their definition's run count wrong.
TTL_ATTRIBUTE = "expires_at"

# Partition key prefixes (see the `store` modules of functions/ksflow).
RUN_PARTITIONS = ("RUN#",)
TENANT_PARTITIONS = ("TENANT#",)
# The tenant's ingestion listing: entries and their count (ingestion/listing.py).
INGESTION_LISTING_PARTITIONS = ("INGESTIONS#",)
# A definition's idempotency and webhook claims.
DEFINITION_PARTITIONS = ("WORKFLOWDEF#",)
IDENTITY_PARTITIONS = ("IDENTITY#",)

READ_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"})
# An index serves only Query and Scan, and no function scans.
INDEX_ACTIONS = ("dynamodb:Query",)
# Reads decrypt with the table key; writes also have DynamoDB encrypt new data under it.
KEY_READ_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
KEY_WRITE_ACTIONS = ("kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")


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
        self.run_indexes = layout.RUN_INDEXES[: settings.run_index_count]
        for index in self.run_indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=layout.PARTITION, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=(dynamodb.ProjectionType.KEYS_ONLY if index.include is None
                                 else dynamodb.ProjectionType.INCLUDE),
                non_key_attributes=None if index.include is None else list(index.include),
            )
        self.index_names = (GSI1, *(index.name for index in self.run_indexes))

    def grant_items(
        self,
        grantee: KsflowFunction,
        actions: Sequence[str],
        *,
        partitions: Sequence[str] | None,
        index: bool = False,
    ) -> None:
        """`actions` (`dynamodb:...`, never Scan) on items whose partition key starts with one of `partitions`.

        `partitions=None` allows every partition: only for the API, which serves every kind of item.
        `index`: also Query on every index of the table, each by name: their partition keys are not the
        table's, so a LeadingKeys condition would not describe them.
        """
        assert "dynamodb:Scan" not in actions, "no function scans the table"
        conditions = None
        if partitions is not None:
            assert not index, "a partition allow-list describes table keys, not index keys"
            conditions = {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{prefix}*" for prefix in partitions]}
            }
        grantee.role.add_to_principal_policy(
            iam.PolicyStatement(actions=sorted(actions), resources=[self.table.table_arn], conditions=conditions)
        )
        if index:
            grantee.role.add_to_principal_policy(iam.PolicyStatement(
                actions=list(INDEX_ACTIONS),
                resources=[f"{self.table.table_arn}/index/{name}" for name in self.index_names],
            ))
        writes = not READ_ACTIONS.issuperset(actions)
        # The table key only through DynamoDB: the role cannot use it to decrypt anything directly.
        grantee.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*KEY_READ_ACTIONS, *(KEY_WRITE_ACTIONS if writes else ())],
                resources=[self.table_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            )
        )
