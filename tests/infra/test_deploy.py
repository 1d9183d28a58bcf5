"""What a real deploy and an IaC scanner see: approvals, backstops, concurrency, bundle pins, checkov skips."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.infra.conftest import PROJECT_ROOT, Synth
from tests.infra.test_infra_stack import arn_of, function, ksflow_functions, only

# checkov findings that are skipped on purpose; every other one is fixed in the template.
SKIPPABLE_CHECKS = {
    "CKV_AWS_115",  # function concurrency limit
    "CKV_AWS_116",  # function DLQ
    "CKV_AWS_117",  # function in a VPC
    "CKV_AWS_173",  # environment variables encrypted with a customer key
    "CKV_AWS_27",  # SQS with a customer key
    "CKV_AWS_18",  # access logging of the access log bucket
}


def make_dry_run(*args: str) -> str:
    """The commands `make` would run, without running them."""
    result = subprocess.run(["make", "--dry-run", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    return result.stdout


@pytest.mark.parametrize(("env", "approval"), [("prod", "broadening"), ("dev", "never")])
def test_prod_deploys_ask_for_approval_of_iam_broadening(env: str, approval: str) -> None:
    [deploy] = [line for line in make_dry_run("deploy", f"ENV={env}").splitlines() if "cdk deploy" in line]
    assert f"--require-approval {approval}" in deploy


def test_synth_runs_checkov_from_its_own_virtualenv() -> None:
    commands = make_dry_run("--always-make", "synth", "ENV=prod")
    assert re.search(r"\.venv-checkov/bin/checkov .*--file cdk\.out/\*\.template\.json", commands)
    # checkov pins an older boto3 than requirements.txt: its own virtualenv, rebuilt with its requirements.
    assert "-m venv .venv-checkov" in commands
    assert "-r requirements-checkov.txt" in commands


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_every_checkov_skip_has_a_reason(request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    skipped: set[str] = set()
    for logical_id, resource in synth.template.to_json()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip["comment"]) > 60, (logical_id, skip)
            skipped.add(skip["id"])
    assert skipped == SKIPPABLE_CHECKS


def test_prod_fixes_instead_of_skipping(prod: Synth) -> None:
    """Log groups with a customer key, the access log bucket versioned, the dispatcher's concurrency capped."""
    resources = prod.template.to_json()["Resources"]
    for log_group in prod.template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in log_group["Properties"]
    (access_logs,) = [r for k, r in prod.template.find_resources("AWS::S3::Bucket").items()
                      if k.startswith("DocumentsAccessLogs")]
    assert access_logs["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    dispatcher_id, _ = function(prod.template, "dispatcher")
    skips = resources[dispatcher_id].get("Metadata", {}).get("checkov", {}).get("skip", [])
    assert "CKV_AWS_115" not in {skip["id"] for skip in skips}


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_only_the_dispatcher_reserves_concurrency_and_only_where_cdk_json_says(
        request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    reserved = {fn["Properties"]["Handler"]: fn["Properties"].get("ReservedConcurrentExecutions")
                for fn in ksflow_functions(synth.template).values()}
    dispatcher = reserved.pop("ksflow.orchestration.dispatcher.lambda_handler")
    assert dispatcher == synth.settings["dispatcher_reserved_concurrency"]
    assert dispatcher == (100 if env_fixture == "prod" else None)  # off in dev: small accounts cannot reserve
    assert set(reserved.values()) == {None}


@pytest.mark.parametrize("name", ["expiry", "reconcile"])
def test_backstops_keep_events_their_code_failed_on(dev: Synth, name: str) -> None:
    """Scheduler and EventBridge invoke them asynchronously: explicit retries, then an on-failure queue."""
    function_id, _ = function(dev.template, name)
    (config,) = [c["Properties"] for c in dev.template.find_resources("AWS::Lambda::EventInvokeConfig").values()
                 if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert config["MaximumRetryAttempts"] == 2
    queue_arn = config["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = queue_arn["Fn::GetAtt"][0]
    assert dev.template.to_json()["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"
    alarms = [a["Properties"] for a in dev.template.find_resources("AWS::CloudWatch::Alarm").values()
              if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
              in a["Properties"].get("Dimensions", [])]
    assert len(alarms) == 1 and alarms[0]["Threshold"] == 1
    # The role may send to that queue, and nothing else on it.
    role_statements = [s for p in dev.template.find_resources("AWS::IAM::Policy").values()
                       for s in p["Properties"]["PolicyDocument"]["Statement"]
                       if s["Resource"] == queue_arn and s["Effect"] == "Allow" and "Principal" not in s]
    assert [s["Action"] for s in role_statements] == ["sqs:SendMessage"]
    assert queue_arn == arn_of(queue_id)


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_versioned_buckets_are_emptied_on_destroy_in_dev_only(request: pytest.FixtureRequest,
                                                              env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    emptied = synth.template.find_resources("Custom::S3AutoDeleteObjects")
    buckets = synth.template.find_resources("AWS::S3::Bucket")
    if env_fixture == "prod":
        assert not emptied
        assert all(b["DeletionPolicy"] == "Retain" for b in buckets.values())
    else:
        assert {json.dumps(c["Properties"]["BucketName"]) for c in emptied.values()} == {
            json.dumps({"Ref": bucket_id}) for bucket_id in buckets}


def test_bundle_ships_the_boto3_that_matches_its_botocore() -> None:
    """The X-Ray SDK brings botocore into the bundle, shadowing the runtime's: boto3 must come with it."""
    requirements = (PROJECT_ROOT / "requirements.txt").read_text()
    assert re.search(r"^boto3==\d+\.\d+\.\d+$", requirements, re.MULTILINE)
    assert "boto3" not in (PROJECT_ROOT / "requirements-dev.txt").read_text()


def test_api_function_ends_before_the_gateway_gives_up(dev: Synth) -> None:
    _, api = function(dev.template, "api")
    _, integration = only(dev.template, "AWS::ApiGatewayV2::Integration")
    gateway_timeout_ms: Any = integration["Properties"].get("TimeoutInMillis", 30_000)
    assert api["Properties"]["Timeout"] * 1000 < gateway_timeout_ms
