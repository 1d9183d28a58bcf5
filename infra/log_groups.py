"""Every log group of the stack: the environment's retention, encrypted with one customer key for logs.

Logs can hold runner error text, request metadata and (where execution data is logged) task tokens, so
they are encrypted with a rotated key of the stack's own rather than CloudWatch Logs' service key.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.settings import EnvironmentSettings

LOGS_KEY_ID = "LogsKey"


def logs_key(scope: Construct, settings: EnvironmentSettings) -> kms.Key:
    """The stack's one key for log groups, created by the first log group that asks for it."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(LOGS_KEY_ID)
    if isinstance(existing, kms.Key):
        return existing
    key = kms.Key(
        stack,
        LOGS_KEY_ID,
        description="ksflow: encryption at rest of every ksflow log group",
        enable_key_rotation=True,
        pending_window=Duration.days(30 if settings.retain else 7),
        # Retained log groups stay readable only while their key exists.
        removal_policy=settings.removal_policy,
    )
    # CloudWatch Logs encrypts on the log groups' behalf, and only for log groups of this account and region.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key


def log_group(
    scope: Construct, construct_id: str, settings: EnvironmentSettings, *, name: str | None = None
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=settings.log_retention,
        encryption_key=logs_key(scope, settings),
        removal_policy=settings.removal_policy,
    )
