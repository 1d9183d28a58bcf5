"""One way to declare every ksflow Lambda function, so runtime, architecture and logging never drift."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import nag
from infra.settings import EnvironmentSettings

SERVICE_NAME = "ksflow"


class KsflowFunction(Construct):
    """A Python 3.12 arm64 function with its own role and a log group whose retention we control.

    The role is created here rather than by `lambda.Function` so that it carries only the log-group-scoped
    write permission instead of the AWSLambdaBasicExecutionRole managed policy (logs on every group).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        code: lambda_.Code,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        timeout: Duration,
        memory_size: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=settings.log_retention,
            removal_policy=settings.removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the ksflow {construct_id}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_size,
            environment={"POWERTOOLS_SERVICE_NAME": SERVICE_NAME, **environment},
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                NagPackSuppression(
                    id="AwsSolutions-L1",
                    reason=(
                        "Pinned to Python 3.12 on purpose: the bundled dependencies are built for cp312 "
                        "arm64 wheels, so a runtime upgrade must move together with that build."
                    ),
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(self.role, [nag.xray_tracing()], apply_to_children=True)

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    def add_environment(self, key: str, value: str) -> None:
        self.function.add_environment(key, value)
