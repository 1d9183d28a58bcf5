"""One way to declare every ksflow Lambda function, so runtime, architecture and logging never drift."""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import checkov, nag
from infra.log_groups import log_group
from infra.settings import EnvironmentSettings

# Lambda's own retries of a failed asynchronous invocation (its default, made explicit), and how long an
# event may wait for them; after that it goes to the on-failure destination.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


@jsii.implements(lambda_.IDestination)
class _FailedInvocationQueue:
    """An on-failure destination whose grant is only `sqs:SendMessage` (CDK's adds two read actions)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType
    ) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self._queue.queue_arn]))
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class KsflowFunction(Construct):
    """A Python 3.12 arm64 function with its own role and its own log group (retention, customer key).

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
        reserved_concurrency: int | None = None,
        failed_invocations: sqs.IQueue | None = None,
        function_name: str | None = None,
    ) -> None:
        """`failed_invocations`: for functions invoked asynchronously, where events that fail go.

        `function_name`: a name fixed at deploy time, for a function whose ARN others must know without
        referencing it (a reference would close a dependency cycle); CloudFormation names the others.
        """
        super().__init__(scope, construct_id)
        self.log_group = log_group(self, "LogGroup", settings)
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
            function_name=function_name,
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
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "POWERTOOLS_SERVICE_NAME": settings.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
                # Responses carry new API keys and run snapshots; traces keep timings and errors only.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                **environment,
            },
        )
        if failed_invocations is not None:
            self.function.configure_async_invoke(
                on_failure=_FailedInvocationQueue(failed_invocations),
                retry_attempts=ASYNC_RETRY_ATTEMPTS,
                max_event_age=ASYNC_MAX_EVENT_AGE,
            )
        checkov.skip(self.function, "CKV_AWS_117", checkov.NO_VPC)
        checkov.skip(self.function, "CKV_AWS_173", checkov.PLAIN_ENVIRONMENT)
        checkov.skip(self.function, "CKV_AWS_116", checkov.SYNCHRONOUS_INVOCATION if failed_invocations is None
                     else checkov.ON_FAILURE_DESTINATION)
        if reserved_concurrency is None:
            checkov.skip(self.function, "CKV_AWS_115", checkov.UNRESERVED_CONCURRENCY)
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
