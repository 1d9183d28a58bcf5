"""A Standard state machine defined by an ASL file that the local stack executes too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import nag
from infra.function import KsflowFunction
from infra.log_groups import log_group
from infra.settings import EnvironmentSettings

# Log groups under this prefix need no CloudWatch Logs resource policy entry of their own; otherwise each
# state machine adds one, and CreateStateMachine fails in accounts whose policy reached its size limit.
VENDED_LOGS_PREFIX = "/aws/vendedlogs/states/"


def vended_log_group_name(settings: EnvironmentSettings, construct_id: str) -> str:
    """`/aws/vendedlogs/states/<stack>-<id>-<stack uuid>`: a stack created again after a deleted one
    retained its log groups (prod) must not collide with the old names."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.join("", [VENDED_LOGS_PREFIX, f"{settings.stack_name}-{construct_id}-", stack_uuid])


def asl_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    settings: EnvironmentSettings,
    definition_file: Path,
    comment: str,
    substitutions: Mapping[str, str],
    functions: Mapping[str, KsflowFunction],
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """`substitutions` maps each `${Placeholder}` of the file to the name of a function in `functions`.

    Traced, logged to its own log group at the environment's level (prod: errors only and no execution
    data, which would hold task tokens and runner error text), and allowed to invoke exactly its task
    functions (the definition comes from a file, so CDK cannot infer these grants; the ASL invokes
    unqualified ARNs, so no version or alias wildcard is needed).
    """
    logs_destination = log_group(
        scope, f"{construct_id}LogGroup", settings, name=vended_log_group_name(settings, construct_id)
    )
    state_machine = sfn.StateMachine(
        scope,
        construct_id,
        comment=comment,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
        definition_substitutions={
            placeholder: functions[name].function_arn for placeholder, name in substitutions.items()
        },
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=logs_destination,
            level=settings.state_machine_log_level,
            include_execution_data=settings.state_machine_log_execution_data,
        ),
    )
    state_machine.add_to_role_policy(
        iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn for fn in functions.values()])
    )
    NagSuppressions.add_resource_suppressions(state_machine, [nag.state_machine_delivery()], apply_to_children=True)
    if settings.state_machine_log_level != sfn.LogLevel.ALL:
        NagSuppressions.add_resource_suppressions(
            state_machine,
            [
                NagPackSuppression(
                    id="AwsSolutions-SF1",
                    reason=(
                        "This environment logs errors only, without execution data: logging every event with its "
                        "data would write task tokens and runner error text into the logs. Execution history "
                        "and X-Ray traces show the rest."
                    ),
                )
            ],
            apply_to_children=True,
        )
    return state_machine, logs_destination
