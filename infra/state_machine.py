"""A Standard state machine defined by an ASL file that the local stack executes too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagSuppressions
from constructs import Construct

from infra import nag
from infra.function import KsflowFunction
from infra.settings import EnvironmentSettings


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

    Traced, logged in full to its own log group, and allowed to invoke exactly its task functions
    (the definition comes from a file, so CDK cannot infer these grants; the ASL invokes unqualified
    ARNs, so no version or alias wildcard is needed).
    """
    log_group = logs.LogGroup(
        scope, f"{construct_id}LogGroup", retention=settings.log_retention, removal_policy=settings.removal_policy
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
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
    )
    state_machine.add_to_role_policy(
        iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn for fn in functions.values()])
    )
    NagSuppressions.add_resource_suppressions(state_machine, [nag.state_machine_delivery()], apply_to_children=True)
    return state_machine, log_group
