"""Definition schedules: their group, the target role scoped to it, the fire function's grants, DLQ and alarms."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synth
from tests.infra.test_infra_stack import (
    _schedule_groups,
    allowed,
    arn_of,
    as_list,
    assert_queue_encrypted_and_tls_only,
    function,
    function_role,
    ref,
    role_statements,
    run_schedule_group,
    run_state_machine,
    schedule_group,
    scheduler_role,
)
from tests.infra.test_monitoring import _by_metric


def _definition_group(synth: Synth) -> str:
    return schedule_group(synth.template, "SchedulesDefinitionScheduleGroup")


def _api_variables(synth: Synth) -> dict[str, Any]:
    _, api = function(synth.template, "api")
    variables: dict[str, Any] = api["Properties"]["Environment"]["Variables"]
    return variables


def _depth_alarm(synth: Synth, queue_id: str) -> dict[str, Any]:
    [alarm] = [a for a in _by_metric(synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
               if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}} in a["Dimensions"]]
    return alarm


def test_target_role_is_assumable_only_for_the_definition_group_and_invokes_only_the_fire_function(
        dev: Synth) -> None:
    group_id = _definition_group(dev)
    role_id, role = scheduler_role(dev.template, group_id)
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                  "ArnEquals": {"aws:SourceArn": arn_of(group_id)}}
    statements = role_statements(dev.template, role_id)
    fire_id, _ = function(dev.template, "schedule_fire")
    assert allowed(statements, "lambda:InvokeFunction") == [arn_of(fire_id)]
    [dlq_arn] = allowed(statements, "sqs:SendMessage")
    assert dlq_arn == arn_of(_api_variables(dev)["SCHEDULE_DLQ_ARN"]["Fn::GetAtt"][0])
    assert {a for s in statements for a in as_list(s["Action"])} == {"lambda:InvokeFunction", "sqs:SendMessage"}
    assert role_id != scheduler_role(dev.template, run_schedule_group(dev.template))[0]


def test_api_manages_the_definition_schedules_and_passes_only_their_target_role(dev: Synth) -> None:
    group_id = _definition_group(dev)
    role_id, _ = scheduler_role(dev.template, group_id)
    fire_id, _ = function(dev.template, "schedule_fire")
    variables = _api_variables(dev)
    assert variables["SCHEDULE_GROUP_NAME"] == ref(group_id)
    assert variables["SCHEDULE_FUNCTION_ARN"] == arn_of(fire_id)
    assert variables["SCHEDULE_ROLE_ARN"] == arn_of(role_id)
    statements = role_statements(dev.template, function_role(dev.template, "api"))
    [manage] = [s for s in statements if "scheduler:UpdateSchedule" in as_list(s["Action"])]
    assert sorted(as_list(manage["Action"])) == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule",
                                                 "scheduler:GetSchedule", "scheduler:UpdateSchedule"]
    assert ref(group_id) in manage["Resource"]["Fn::Join"][1] and ":schedule/" in json.dumps(manage["Resource"])
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole" and arn_of(role_id) in as_list(s["Resource"])]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_definition_schedule_dead_letter_queue_alarms_at_its_first_message(dev: Synth) -> None:
    dlq_id = _api_variables(dev)["SCHEDULE_DLQ_ARN"]["Fn::GetAtt"][0]
    assert_queue_encrypted_and_tls_only(dev.template, dlq_id)
    alarm = _depth_alarm(dev, dlq_id)
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmName"] == "ksflow-dev-DefinitionSchedulesDeadLetters"


def test_fire_function_failures_after_lambdas_retries_are_kept_and_alarm(dev: Synth) -> None:
    fire_id, _ = function(dev.template, "schedule_fire")
    [config] = [c["Properties"] for c in dev.template.find_resources("AWS::Lambda::EventInvokeConfig").values()
                if c["Properties"]["FunctionName"] == ref(fire_id)]
    queue_id = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert config["MaximumRetryAttempts"] == 2
    assert_queue_encrypted_and_tls_only(dev.template, queue_id)
    assert _depth_alarm(dev, queue_id)["Threshold"] == 1
    assert _by_metric(dev, "AWS/Lambda", "Errors")


def test_occurrences_that_cannot_run_alarm(prod: Synth) -> None:
    [alarm] = _by_metric(prod, "ksflow/prod", "ScheduleOccurrencesFailed")
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # The service dimension Powertools adds, so dev and prod in one account never mix.
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "ksflow-prod"}]
    assert alarm["AlarmName"] == "ksflow-prod-ScheduleOccurrencesFailed" and alarm["AlarmActions"]


def test_fire_function_starts_runs_like_the_api_and_nothing_more(dev: Synth) -> None:
    """It invokes a definition as its creator: the run's expiry schedule, its execution, large snapshots."""
    statements = role_statements(dev.template, function_role(dev.template, "schedule_fire"))
    run_group_id = run_schedule_group(dev.template)
    expiry_role_id, _ = scheduler_role(dev.template, run_group_id)
    machine_id, _ = run_state_machine(dev.template)
    assert allowed(statements, "states:StartExecution") == [ref(machine_id)]
    [run_schedules] = allowed(statements, "scheduler:CreateSchedule")
    assert ref(run_group_id) in run_schedules["Fn::Join"][1]
    # Its run's expiry schedule when the run cannot start; its own schedule once the definition is gone.
    assert sorted(_schedule_groups(allowed(statements, "scheduler:DeleteSchedule"))) == sorted(
        [run_group_id, _definition_group(dev)])
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == arn_of(expiry_role_id)
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetObject"):
        [objects] = allowed(statements, action)
        assert json.dumps(objects).endswith('/tenants/*/run-snapshots/*"]]}')
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("scheduler:", "states:"))} - {
        "scheduler:CreateSchedule", "scheduler:DeleteSchedule", "states:StartExecution"}
    assert "lambda:InvokeFunction" not in actions and "sqs:SendMessage" in actions  # its on-failure queue only
    _, fire = function(dev.template, "schedule_fire")
    variables = fire["Properties"]["Environment"]["Variables"]
    assert variables["SCHEDULER_GROUP_NAME"] == ref(run_group_id)
    assert variables["SCHEDULER_ROLE_ARN"] == arn_of(expiry_role_id)
    assert variables["RUN_STATE_MACHINE_ARN"] == ref(machine_id)
    assert variables["SCHEDULE_GROUP_NAME"] == ref(_definition_group(dev))
