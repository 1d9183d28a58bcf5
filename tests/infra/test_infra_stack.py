"""CDK assertions on the synthesized ksflow stack (dev and prod)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

if TYPE_CHECKING:
    from tests.infra.conftest import Synth

PROJECT_ROOT = Path(__file__).resolve().parents[2]

HANDLERS = {
    "api": "ksflow.api.handler.lambda_handler",
    "dispatcher": "ksflow.orchestration.dispatcher.lambda_handler",
    "run_failure": "ksflow.orchestration.run_failure.lambda_handler",
    "expiry": "ksflow.orchestration.expiry.lambda_handler",
    "reconcile": "ksflow.orchestration.reconcile.lambda_handler",
    "ingest": "ksflow.ingestion.pipeline.lambda_handler",
    "ingestion_failure": "ksflow.ingestion.failure.lambda_handler",
    "schedule_fire": "ksflow.schedules.fire.lambda_handler",
    "delete_batch": "ksflow.deletion.handler.lambda_handler",
}

# Every function: its logs' and metrics' service, its metrics namespace, and no responses in traces.
POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"}

# Exactly the variables each function's code reads, besides POWERTOOLS_ENVIRONMENT.
ENVIRONMENT = {
    "api": {
        "TABLE_NAME",
        "KMS_KEY_ID",
        "RUN_STATE_MACHINE_ARN",
        "SCHEDULER_GROUP_NAME",
        "SCHEDULER_ROLE_ARN",
        "SCHEDULER_DLQ_ARN",
        "EXPIRY_FUNCTION_ARN",
        "ALLOW_LOOPBACK_RUNNERS",
        "EXPIRY_GRACE_SECONDS",
        "DOCUMENTS_BUCKET",
        "INGESTION_STATE_MACHINE_ARN",
        "DELETION_STATE_MACHINE_ARN",
        "SCHEDULE_GROUP_NAME",
        "SCHEDULE_FUNCTION_ARN",
        "SCHEDULE_ROLE_ARN",
        "SCHEDULE_DLQ_ARN",
        "RUN_INDEX_COUNT",
    },
    "dispatcher": {"TABLE_NAME", "KMS_KEY_ID", "PUBLIC_API_URL", "ALLOW_LOOPBACK_RUNNERS", "SCHEDULER_GROUP_NAME",
                   "DOCUMENTS_BUCKET"},
    # It moves the expiry schedule to the next attempt (executions.move_expiry), as the API makes the first.
    "run_failure": {"TABLE_NAME", "SCHEDULER_GROUP_NAME", "SCHEDULER_ROLE_ARN", "SCHEDULER_DLQ_ARN",
                    "EXPIRY_FUNCTION_ARN", "EXPIRY_GRACE_SECONDS"},
    "expiry": {"TABLE_NAME", "RUN_STATE_MACHINE_ARN"},
    "delete_batch": {"TABLE_NAME", "DOCUMENTS_BUCKET", "INGESTION_STATE_MACHINE_ARN"},
    "reconcile": {"TABLE_NAME", "SCHEDULER_GROUP_NAME"},
    "ingest": {"TABLE_NAME", "DOCUMENTS_BUCKET"},
    "ingestion_failure": {"TABLE_NAME"},
    "schedule_fire": {"TABLE_NAME", "RUN_STATE_MACHINE_ARN", "SCHEDULER_GROUP_NAME", "SCHEDULER_ROLE_ARN",
                      "SCHEDULER_DLQ_ARN", "EXPIRY_FUNCTION_ARN", "EXPIRY_GRACE_SECONDS", "DOCUMENTS_BUCKET",
                      "SCHEDULE_GROUP_NAME"},
}


# --- helpers -------------------------------------------------------------------------------------------


def only(template: Template, resource_type: str, props: Any = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(resource_type, props or {})
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def state_machine(template: Template, construct: str) -> tuple[str, dict[str, Any]]:
    """The run (`OrchestrationRunStateMachine`) or ingestion (`DocumentsIngestionStateMachine`) machine."""
    found = {k: v for k, v in template.find_resources("AWS::StepFunctions::StateMachine").items()
             if k.startswith(construct)}
    assert len(found) == 1, f"expected one {construct}, found {sorted(found)}"
    return next(iter(found.items()))


def run_state_machine(template: Template) -> tuple[str, dict[str, Any]]:
    return state_machine(template, "OrchestrationRunStateMachine")


def function(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    return only(template, "AWS::Lambda::Function", {"Properties": {"Handler": HANDLERS[name]}})


def ksflow_functions(template: Template) -> dict[str, dict[str, Any]]:
    """The ksflow functions, without CDK's own (dev's bucket auto-delete provider)."""
    return {k: v for k, v in template.find_resources("AWS::Lambda::Function").items()
            if v["Properties"].get("Handler") in HANDLERS.values()}


def ref(logical_id: str) -> dict[str, Any]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every AWS::IAM::Policy attached to the role."""
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if ref(role_logical_id) in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def allowed(statements: list[dict[str, Any]], action: str) -> list[Any]:
    """Resources the statements allow `action` on."""
    resources: list[Any] = []
    for statement in statements:
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"]):
            resources.extend(as_list(statement["Resource"]))
    return resources


def schedule_group(template: Template, construct: str) -> str:
    """The run expiry (`OrchestrationRunScheduleGroup`) or definition (`SchedulesDefinitionScheduleGroup`) group."""
    found = [k for k in template.find_resources("AWS::Scheduler::ScheduleGroup") if k.startswith(construct)]
    assert len(found) == 1, f"expected one {construct}, found {found}"
    return found[0]


def run_schedule_group(template: Template) -> str:
    return schedule_group(template, "OrchestrationRunScheduleGroup")


def scheduler_role(template: Template, group_id: str) -> tuple[str, dict[str, Any]]:
    """The role Scheduler assumes for the schedules of one group (its trust names that group)."""
    return only(
        template,
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Condition": Match.object_like({"ArnEquals": {"aws:SourceArn": arn_of(group_id)}}),
                    })]
                }
            }
        },
    )


def table_key(template: Template) -> Any:
    _, table = only(template, "AWS::DynamoDB::Table")
    return table["Properties"]["SSESpecification"]["KMSMasterKeyId"]


def function_role(template: Template, name: str) -> str:
    _, fn = function(template, name)
    role_id: str = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def expiry_function_arn(template: Template) -> Any:
    """The ARN every maker of expiry schedules targets: the expiry function's, built from its fixed name."""
    _, expiry = function(template, "expiry")
    return {"Fn::Join": ["", ["arn:", ref("AWS::Partition"), ":lambda:", ref("AWS::Region"), ":",
                              ref("AWS::AccountId"), f":function:{expiry['Properties']['FunctionName']}"]]}


# --- data ----------------------------------------------------------------------------------------------


def test_table_keys_index_and_protection(dev: Synth) -> None:
    table_id, table = only(dev.template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    # Every key attribute of the table and its indexes is a string (the run indexes: test_run_indexes.py).
    assert {a["AttributeName"] for a in props["AttributeDefinitions"]} >= {"pk", "sk", "gsi1pk", "gsi1sk"}
    assert {a["AttributeType"] for a in props["AttributeDefinitions"]} == {"S"}
    # Still ALL: listings by definition read whole runs from it.
    assert props["GlobalSecondaryIndexes"][0] == {
        "IndexName": "gsi1",
        "KeySchema": [
            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert dev.template.to_json()["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert table_id


def test_kms_keys_rotate(dev: Synth) -> None:
    keys = dev.template.find_resources("AWS::KMS::Key")
    assert len(keys) >= 5  # table, webhook secrets, documents, logs, alarm topic
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())


def test_dev_resources_are_disposable(dev: Synth) -> None:
    _, table = only(dev.template, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False


def test_prod_retains_data_with_deletion_protection(prod: Synth) -> None:
    _, table = only(prod.template, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    for key in prod.template.find_resources("AWS::KMS::Key").values():
        assert key["DeletionPolicy"] == "Retain"
    for log_group in prod.template.find_resources("AWS::Logs::LogGroup").values():
        assert log_group["DeletionPolicy"] == "Retain"


# --- functions -----------------------------------------------------------------------------------------


def test_every_function_is_arm64_python312(dev: Synth) -> None:
    functions = ksflow_functions(dev.template)
    assert sorted(fn["Properties"]["Handler"] for fn in functions.values()) == sorted(HANDLERS.values())
    code_keys = set()
    for fn in functions.values():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert "RetentionInDays" in dev.template.to_json()["Resources"][log_group_id]["Properties"]
        code_keys.add(json.dumps(props["Code"], sort_keys=True))
    assert len(code_keys) == 1, "all functions share one code asset"


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_function_environment(dev: Synth, name: str) -> None:
    _, fn = function(dev.template, name)
    variables = fn["Properties"]["Environment"]["Variables"]
    assert set(variables) == ENVIRONMENT[name] | POWERTOOLS_ENVIRONMENT
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ksflow-dev"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ksflow/dev"
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    if "ALLOW_LOOPBACK_RUNNERS" in variables:
        assert variables["ALLOW_LOOPBACK_RUNNERS"] == "false"


def test_function_sizing(dev: Synth) -> None:
    _, api = function(dev.template, "api")
    # Below API Gateway's 30 s integration timeout, so the function's own timeout is what ends a request.
    assert api["Properties"]["Timeout"] == 29
    assert api["Properties"]["MemorySize"] == 1024
    assert api["Properties"]["Environment"]["Variables"]["EXPIRY_GRACE_SECONDS"] == "60"
    _, dispatcher = function(dev.template, "dispatcher")
    assert dispatcher["Properties"]["Timeout"] == 120


def test_function_roles_carry_no_managed_policies(dev: Synth) -> None:
    for name in HANDLERS:
        role = dev.template.to_json()["Resources"][function_role(dev.template, name)]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_code_asset_without_bundling_holds_only_the_package(dev: Synth) -> None:
    _, api = function(dev.template, "api")
    asset = dev.outdir / f"asset.{api['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert asset.is_dir()
    assert (asset / "ksflow" / "__init__.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.glob("*.egg-info"))


# --- permissions ---------------------------------------------------------------------------------------


def test_api_function_permissions(dev: Synth) -> None:
    _, api = function(dev.template, "api")
    statements = role_statements(dev.template, function_role(dev.template, "api"))
    state_machine_id, _ = run_state_machine(dev.template)
    ingestion_machine_id, _ = state_machine(dev.template, "DocumentsIngestionStateMachine")
    deletion_machine_id, _ = state_machine(dev.template, "DeletionDeletionStateMachine")
    assert sorted(map(json.dumps, allowed(statements, "states:StartExecution"))) == sorted(
        map(json.dumps, [ref(state_machine_id), ref(ingestion_machine_id), ref(deletion_machine_id)]))
    stoppable = allowed(statements, "states:StopExecution")
    assert len(stoppable) == 2 and all(":execution:" in json.dumps(arn) for arn in stoppable)
    # Any execution name: a stop ends `run-{id}` or a retried attempt's `run-{id}-{N}`.
    [run_executions] = [arn for arn in stoppable if state_machine_id in json.dumps(arn)]
    assert run_executions["Fn::Join"][1][-1] == ":*"
    # Only ingestions are described (their status endpoint); runs never are.
    [described] = allowed(statements, "states:DescribeExecution")
    assert ingestion_machine_id in json.dumps(described) and state_machine_id not in json.dumps(described)
    # Callbacks, stops and cancels answer a run's task token, or fail it when a retry follows; heartbeats
    # restart its timer.
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert allowed(statements, action) == ["*"], action
    run_group_id = run_schedule_group(dev.template)
    definition_group_id = schedule_group(dev.template, "SchedulesDefinitionScheduleGroup")
    for action in ("scheduler:CreateSchedule", "scheduler:DeleteSchedule"):
        assert sorted(_schedule_groups(allowed(statements, action))) == sorted([run_group_id, definition_group_id])
    for action in ("scheduler:UpdateSchedule", "scheduler:GetSchedule"):
        assert _schedule_groups(allowed(statements, action)) == [definition_group_id]
    assert sorted(map(json.dumps, allowed(statements, "iam:PassRole"))) == sorted(
        json.dumps(arn_of(scheduler_role(dev.template, group)[0])) for group in (run_group_id, definition_group_id))
    for pass_role in [s for s in statements if s["Action"] == "iam:PassRole"]:
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    secrets_key = api["Properties"]["Environment"]["Variables"]["KMS_KEY_ID"]
    assert secrets_key != table_key(dev.template)
    for action in ("kms:Encrypt", "kms:Decrypt"):
        assert secrets_key in allowed(statements, action)
    assert secrets_key not in allowed(statements, "kms:GenerateDataKey")


def _schedule_groups(schedule_arns: list[Any]) -> list[str]:
    """The schedule group of each `.../schedule/<group>/*` ARN."""
    groups = []
    for arn in schedule_arns:
        text = json.dumps(arn)
        assert ":schedule/" in text and text.endswith('/*"]]}'), text
        groups.append(arn["Fn::Join"][1][-2]["Ref"])
    return groups


def test_dispatcher_task_response_policy_avoids_a_cycle(dev: Synth) -> None:
    dispatcher_id, dispatcher = function(dev.template, "dispatcher")
    role_id = function_role(dev.template, "dispatcher")
    policies = {
        policy_id: policy
        for policy_id, policy in dev.template.find_resources("AWS::IAM::Policy").items()
        if policy["Properties"]["Roles"] == [ref(role_id)]
        and policy["Properties"]["PolicyDocument"]["Statement"]
        == [
            {
                "Action": ["states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess"],
                "Effect": "Allow",
                "Resource": "*",
            }
        ]
    }
    assert len(policies) == 1, "a standalone policy holds exactly the task-token actions"
    policy_id = next(iter(policies))
    # The function must not wait for that policy (the state machine, which invokes it, does).
    assert policy_id not in dispatcher.get("DependsOn", [])
    _, state_machine = run_state_machine(dev.template)
    assert policy_id in state_machine["DependsOn"]
    secrets_key = dispatcher["Properties"]["Environment"]["Variables"]["KMS_KEY_ID"]
    statements = role_statements(dev.template, role_id)
    assert secrets_key in allowed(statements, "kms:Decrypt")
    assert secrets_key not in allowed(statements, "kms:Encrypt")
    public_url = json.dumps(dispatcher["Properties"]["Environment"]["Variables"]["PUBLIC_API_URL"])
    http_api_id, _ = only(dev.template, "AWS::ApiGatewayV2::Api")
    assert http_api_id in public_url and "execute-api" in public_url
    assert dispatcher_id


@pytest.mark.parametrize("name", ["dispatcher", "run_failure", "reconcile"])
def test_functions_that_fail_runs_may_delete_run_schedules(dev: Synth, name: str) -> None:
    statements = role_statements(dev.template, function_role(dev.template, name))
    group_id = run_schedule_group(dev.template)
    assert _schedule_groups(allowed(statements, "scheduler:DeleteSchedule")) == [group_id]
    # Only the run failure function plans a next attempt, whose expiry schedule it makes.
    creates = allowed(statements, "scheduler:CreateSchedule")
    assert _schedule_groups(creates) == ([group_id] if name == "run_failure" else [])
    _, fn = function(dev.template, name)
    assert fn["Properties"]["Environment"]["Variables"]["SCHEDULER_GROUP_NAME"] == ref(group_id)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert {a for a in actions if a.startswith(("scheduler:", "states:"))} == {
        "dispatcher": {"scheduler:DeleteSchedule", "states:SendTaskSuccess", "states:SendTaskFailure",
                       "states:SendTaskHeartbeat"},
        "run_failure": {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"},
        "reconcile": {"scheduler:DeleteSchedule"},
    }[name]
    assert ("iam:PassRole" in actions) == (name == "run_failure")


def test_run_failure_makes_the_next_attempts_expiry_schedule_like_the_api(dev: Synth) -> None:
    """Same target, role, dead-letter queue and grace as the first attempt's, and it may pass only that role."""
    _, run_failure = function(dev.template, "run_failure")
    variables = run_failure["Properties"]["Environment"]["Variables"]
    _, api = function(dev.template, "api")
    api_variables = api["Properties"]["Environment"]["Variables"]
    for key in ("SCHEDULER_GROUP_NAME", "SCHEDULER_ROLE_ARN", "SCHEDULER_DLQ_ARN", "EXPIRY_FUNCTION_ARN",
                "EXPIRY_GRACE_SECONDS"):
        assert variables[key] == api_variables[key], key
    assert variables["EXPIRY_FUNCTION_ARN"] == expiry_function_arn(dev.template)
    role_id, _ = scheduler_role(dev.template, run_schedule_group(dev.template))
    statements = role_statements(dev.template, function_role(dev.template, "run_failure"))
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == arn_of(role_id)
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    # It starts and stops no execution: the attempt goes on in the execution that asked.
    assert not [a for s in statements for a in as_list(s["Action"]) if str(a).startswith("states:")]


def test_run_failure_names_the_expiry_function_without_referencing_it(dev: Synth) -> None:
    """The state machine invokes the run failure function, whose schedules target the expiry function, which
    stops the state machine's executions: a reference would close that ring, and CloudFormation refuses
    cyclic templates (so does `Template.from_stack`). The expiry function's fixed name breaks it."""
    expiry_id, _ = function(dev.template, "expiry")
    _, run_failure = function(dev.template, "run_failure")
    assert expiry_id not in json.dumps(run_failure)
    assert run_failure["Properties"]["Environment"]["Variables"]["EXPIRY_FUNCTION_ARN"] == expiry_function_arn(
        dev.template)


def test_expiry_never_deletes_schedules(dev: Synth) -> None:
    """The schedule that invokes the expiry function deletes itself after completion."""
    statements = role_statements(dev.template, function_role(dev.template, "expiry"))
    assert not allowed(statements, "scheduler:DeleteSchedule")


def test_expiry_may_stop_run_executions(dev: Synth) -> None:
    statements = role_statements(dev.template, function_role(dev.template, "expiry"))
    state_machine_id, _ = run_state_machine(dev.template)
    [executions] = allowed(statements, "states:StopExecution")
    assert ":execution:" in json.dumps(executions) and state_machine_id in json.dumps(executions)
    # Every execution of the run state machine: `run-{id}`, and `run-{id}-{N}` of a retry by hand.
    assert executions["Fn::Join"][1][-1] == ":*"


# --- state machine -------------------------------------------------------------------------------------


def test_state_machine_configuration(dev: Synth) -> None:
    state_machine_id, state_machine = run_state_machine(dev.template)
    props = state_machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    [destination] = props["LoggingConfiguration"]["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert "RetentionInDays" in dev.template.to_json()["Resources"][log_group_id]["Properties"]
    dispatcher_id, _ = function(dev.template, "dispatcher")
    run_failure_id, _ = function(dev.template, "run_failure")
    assert props["DefinitionSubstitutions"] == {
        "DispatcherFunctionArn": arn_of(dispatcher_id),
        "RunFailureFunctionArn": arn_of(run_failure_id),
    }
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    invocable = allowed(role_statements(dev.template, role_id), "lambda:InvokeFunction")
    assert sorted(map(json.dumps, invocable)) == sorted(
        map(json.dumps, [arn_of(dispatcher_id), arn_of(run_failure_id)])
    )
    assert state_machine_id


def test_state_machine_definition(dev: Synth) -> None:
    _, state_machine = run_state_machine(dev.template)
    props = state_machine["Properties"]
    # from_file ships the ASL as an asset; read the staged copy the template points at.
    staged = dev.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    text = staged.read_text()
    assert text == (PROJECT_ROOT / "functions/ksflow/orchestration/run_workflow.asl.json").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(props["DefinitionSubstitutions"])
    definition = json.loads(text)
    states = definition["States"]
    callback_task = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    [wait_name] = [name for name, s in states.items() if s.get("Resource") == callback_task]
    wait = states[wait_name]
    assert definition["StartAt"] == wait_name
    assert wait["Parameters"]["FunctionName"] == "${DispatcherFunctionArn}"
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    # Both timers come from the run's attempt: its deadline and its heartbeat timeout.
    assert wait["TimeoutSecondsPath"] == "$.timeout_seconds"
    assert wait["HeartbeatSecondsPath"] == "$.heartbeat_seconds"
    assert wait.get("End") is True, "the happy path is the one task"
    catches = {error: catch["Next"] for catch in wait["Catch"] for error in catch["ErrorEquals"]}
    # Whatever else fails the wait (a timer, AttemptFailed) goes to the run failure function ...
    fail_run = states[catches["States.ALL"]]
    assert fail_run["Parameters"]["FunctionName"] == "${RunFailureFunctionArn}"
    assert fail_run["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Name"
    # ... whose answer either waits out the next attempt's backoff and dispatches it, or ends the run.
    choice = states[fail_run["Next"]]
    assert choice["Type"] == "Choice"
    [retry] = choice["Choices"]
    assert retry["Variable"] == "$.retry" and retry["BooleanEquals"] is True
    backoff = states[retry["Next"]]
    assert backoff["Type"] == "Wait" and backoff["Next"] == wait_name
    assert states[choice["Default"]]["Type"] == "Succeed"
    assert states[catches["RunnerUnavailable"]]["Next"] == retry["Next"]
    assert {s["Type"] for s in states.values()} == {"Task", "Wait", "Choice", "Succeed"}


# --- scheduler and reconciliation ----------------------------------------------------------------------


def test_scheduler_group_role_and_dead_letter_queue(dev: Synth) -> None:
    group_id = run_schedule_group(dev.template)
    role_id, role = scheduler_role(dev.template, group_id)
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": arn_of(group_id)}

    statements = role_statements(dev.template, role_id)
    expiry_id, expiry = function(dev.template, "expiry")
    assert allowed(statements, "lambda:InvokeFunction") == [arn_of(expiry_id)]
    assert expiry["Properties"]["FunctionName"] == "ksflow-dev-run-expiry"
    [dlq_arn] = allowed(statements, "sqs:SendMessage")
    dlq_id = dlq_arn["Fn::GetAtt"][0]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {"lambda:InvokeFunction", "sqs:SendMessage"}

    _, api = function(dev.template, "api")
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["SCHEDULER_DLQ_ARN"] == arn_of(dlq_id)
    assert variables["SCHEDULER_ROLE_ARN"] == arn_of(role_id)
    assert variables["SCHEDULER_GROUP_NAME"] == ref(group_id)
    # The function's ARN, spelled from its name (the run failure function cannot reference it).
    assert variables["EXPIRY_FUNCTION_ARN"] == expiry_function_arn(dev.template)
    assert_queue_encrypted_and_tls_only(dev.template, dlq_id)


def test_execution_status_rule_reconciles_abnormal_ends(dev: Synth) -> None:
    state_machine_id, _ = run_state_machine(dev.template)
    _, rule = only(dev.template, "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [ref(state_machine_id)]},
    }
    [target] = rule["Properties"]["Targets"]
    reconcile_id, _ = function(dev.template, "reconcile")
    assert target["Arn"] == arn_of(reconcile_id)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert_queue_encrypted_and_tls_only(dev.template, dlq_id)


def assert_queue_encrypted_and_tls_only(template: Template, queue_id: str) -> None:
    queue = template.to_json()["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue["Properties"]
    policies = [
        p
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if ref(queue_id) in p["Properties"]["Queues"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


# --- HTTP API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_http_api_catch_all_route_and_throttling(request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    template = synth.template
    api_id, api = only(template, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    routes = {r["Properties"]["RouteKey"]: r for r in template.find_resources("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$default", "POST /v1/workflow-runs/{run_id}/callback"}
    # Authentication is done in the handler (API keys, webhook signatures, public OpenAPI document).
    assert all(r["Properties"].get("AuthorizationType", "NONE") == "NONE" for r in routes.values())
    _, integration = only(template, "AWS::ApiGatewayV2::Integration")
    api_fn_id, _ = function(template, "api")
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == arn_of(api_fn_id)
    _, stage = only(template, "AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["ApiId"] == ref(api_id)
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    # Values from cdk.json, not stack parameters: a deploy would keep a parameter's previous value, so a
    # change to cdk.json would never reach a deployed stack.
    settings = synth.settings
    assert props["DefaultRouteSettings"] == {"ThrottlingRateLimit": settings["throttle_rate_limit"],
                                             "ThrottlingBurstLimit": settings["throttle_burst_limit"]}
    assert props["RouteSettings"] == {"POST /v1/workflow-runs/{run_id}/callback": {
        "ThrottlingRateLimit": settings["callback_throttle_rate_limit"],
        "ThrottlingBurstLimit": settings["callback_throttle_burst_limit"]}}
    assert set(template.to_json()["Parameters"]) <= {"AlarmEmail", "BootstrapVersion"}
    assert api["Properties"]["Name"] == f"ksflow-{synth.env}"
    access_log_group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert "RetentionInDays" in template.to_json()["Resources"][access_log_group_id]["Properties"]
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]


def test_outputs(dev: Synth) -> None:
    outputs = dev.template.find_outputs("*")
    assert {"ApiUrl", "TableName", "StateMachineArn", "Region", "DefinitionScheduleGroupName"} <= set(outputs)
    assert outputs["Region"]["Value"] == {"Ref": "AWS::Region"}
    group = dev.template.find_resources("AWS::Scheduler::ScheduleGroup")
    assert outputs["DefinitionScheduleGroupName"]["Value"] in [{"Ref": logical_id} for logical_id in group]


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_every_log_group_has_retention_and_the_logs_key(request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    log_groups = synth.template.find_resources("AWS::Logs::LogGroup")
    assert len(log_groups) == 13  # nine functions, three state machines, API access logs
    assert all("RetentionInDays" in lg["Properties"] for lg in log_groups.values())
    [key_id] = {lg["Properties"]["KmsKeyId"]["Fn::GetAtt"][0] for lg in log_groups.values()}
    key = synth.template.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                   if "logs." in json.dumps(s.get("Principal", {}))]
    assert ":log-group:*" in json.dumps(statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    # Retained log groups stay readable only while their key exists.
    assert key["DeletionPolicy"] == ("Retain" if env_fixture == "prod" else "Delete")


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_state_machines_log_to_vended_log_groups(request: pytest.FixtureRequest, env_fixture: str) -> None:
    """Named under /aws/vendedlogs/states/ (no Logs resource policy entry each); prod logs errors only,
    without execution data (task tokens, runner error text)."""
    synth: Synth = request.getfixturevalue(env_fixture)
    resources = synth.template.to_json()["Resources"]
    machines = synth.template.find_resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == 3
    for machine in machines.values():
        logging = machine["Properties"]["LoggingConfiguration"]
        [destination] = logging["Destinations"]
        log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        name = json.dumps(resources[log_group_id]["Properties"]["LogGroupName"])
        assert f'"/aws/vendedlogs/states/ksflow-{env_fixture}-' in name
        assert "AWS::StackId" in name, "unique per stack: a retained group of a deleted stack never collides"
        expected = ("ALL", True) if env_fixture == "dev" else ("ERROR", False)
        assert (logging["Level"], logging["IncludeExecutionData"]) == expected


# --- cdk-nag -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_no_unacknowledged_nag_findings(request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    annotations = Annotations.from_stack(synth.stack)
    findings = Match.string_like_regexp("AwsSolutions-.*")
    errors = annotations.find_error("*", findings)
    warnings = annotations.find_warning("*", findings)
    assert not errors, [e.entry.data for e in errors]
    assert not warnings, [w.entry.data for w in warnings]
