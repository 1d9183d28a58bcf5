"""The local runtime's Step Functions: task-token calls while another execution is still starting."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from tests.conftest import wait_for

WAITING = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}


def test_a_token_call_skips_an_execution_without_a_worker_yet(aws_env: dict[str, str]) -> None:
    """moto looked tokens up in every RUNNING execution's worker and crashed (AttributeError) on one that had
    none yet; the heartbeat a dispatcher sends right after its runner's 2xx then failed its run."""
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="waiting", definition=json.dumps(WAITING),
                                       roleArn="arn:aws:iam::123456789012:role/states")["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    backend = stepfunctions_parser_backends["123456789012"]["us-east-1"]

    def execution() -> Any:
        found = [e for m in backend.state_machines for e in m.executions if e.execution_arn == started]
        return found[0] if found and found[0].exec_worker is not None and found[0].exec_worker.env else None

    starting = wait_for(execution)
    env, starting.exec_worker.env = starting.exec_worker.env, None  # as it is for a moment after its start
    try:
        for call in (lambda: sfn.send_task_heartbeat(taskToken="unknown"),
                     lambda: sfn.send_task_success(taskToken="unknown", output="{}"),
                     lambda: sfn.send_task_failure(taskToken="unknown", error="Nope")):
            with pytest.raises(ClientError) as refused:
                call()
            assert refused.value.response["Error"]["Code"] in ("InvalidToken", "TaskDoesNotExist")
    finally:
        starting.exec_worker.env = env
    sfn.stop_execution(executionArn=started)
