"""CDK assertions on the documents bucket, the ingestion functions and the ingestion state machine."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import Synth
from tests.infra.test_infra_stack import (
    PROJECT_ROOT,
    allowed,
    arn_of,
    function,
    function_role,
    ref,
    role_statements,
    state_machine,
)


def _documents_bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    buckets = {k: v for k, v in synth.template.find_resources("AWS::S3::Bucket").items()
               if k.startswith("DocumentsBucket")}
    assert len(buckets) == 1
    return next(iter(buckets.items()))


def _objects(statement_resources: list[Any], bucket_id: str) -> bool:
    return statement_resources == [{"Fn::Join": ["", [arn_of(bucket_id), "/tenants/*"]]}]


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_bucket_is_versioned_private_kms_encrypted_and_logged(request: pytest.FixtureRequest,
                                                              env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    bucket_id, bucket = _documents_bucket(synth)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"] is True
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    key = synth.template.to_json()["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    logs_id = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert synth.template.to_json()["Resources"][logs_id]["Type"] == "AWS::S3::Bucket"
    policies = [p for p in synth.template.find_resources("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == ref(bucket_id)]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    expected = "Retain" if env_fixture == "prod" else "Delete"
    assert bucket["DeletionPolicy"] == expected and key["DeletionPolicy"] == expected


def test_ingest_function_reads_only_uploads(dev: Synth) -> None:
    bucket_id, _ = _documents_bucket(dev)
    _, ingest = function(dev.template, "ingest")
    assert ingest["Properties"]["Timeout"] == 900 and ingest["Properties"]["MemorySize"] == 2048
    assert ingest["Properties"]["Environment"]["Variables"]["DOCUMENTS_BUCKET"] == ref(bucket_id)
    statements = role_statements(dev.template, function_role(dev.template, "ingest"))
    assert _objects(allowed(statements, "s3:GetObject"), bucket_id)
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:ListBucketVersions", "kms:GenerateDataKey"):
        assert not allowed(statements, action), action
    assert allowed(statements, "kms:Decrypt")
    failure_statements = role_statements(dev.template, function_role(dev.template, "ingestion_failure"))
    assert not [s for s in failure_statements if any(str(a).startswith("s3:") for a in
                                                     (s["Action"] if isinstance(s["Action"], list)
                                                      else [s["Action"]]))]


def test_api_function_may_upload_delete_and_drive_ingestions(dev: Synth) -> None:
    bucket_id, _ = _documents_bucket(dev)
    machine_id, _ = state_machine(dev.template, "DocumentsIngestionStateMachine")
    _, api = function(dev.template, "api")
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["DOCUMENTS_BUCKET"] == ref(bucket_id)
    assert variables["INGESTION_STATE_MACHINE_ARN"] == ref(machine_id)
    statements = role_statements(dev.template, function_role(dev.template, "api"))
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListMultipartUploadParts",
                   "s3:AbortMultipartUpload", "s3:PutObjectTagging", "s3:DeleteObjectTagging"):
        assert _objects(allowed(statements, action), bucket_id), action
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucketVersions"]
    assert listing["Resource"] == arn_of(bucket_id)
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["tenants/*"]}}
    # Direct uploads' download links and completions read the documents (run snapshots are among them).
    assert sorted(map(json.dumps, allowed(statements, "s3:GetObject"))) == sorted(
        map(json.dumps, [_run_snapshots(bucket_id), {"Fn::Join": ["", [arn_of(bucket_id), "/tenants/*"]]}]))
    assert ref(machine_id) in allowed(statements, "states:StartExecution")


def _run_snapshots(bucket_id: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [arn_of(bucket_id), "/tenants/*/run-snapshots/*"]]}


@pytest.mark.parametrize("name", ["api", "dispatcher"])
def test_run_snapshots_kept_in_the_bucket_are_readable_by_who_sends_runs(dev: Synth, name: str) -> None:
    bucket_id, bucket = _documents_bucket(dev)
    _, fn = function(dev.template, name)
    assert fn["Properties"]["Environment"]["Variables"]["DOCUMENTS_BUCKET"] == ref(bucket_id)
    statements = role_statements(dev.template, function_role(dev.template, name))
    assert _run_snapshots(bucket_id) in allowed(statements, "s3:GetObject")
    key = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert key in allowed(statements, "kms:Decrypt")


def test_ingestion_state_machine_runs_the_shared_asl(dev: Synth) -> None:
    machine_id, machine = state_machine(dev.template, "DocumentsIngestionStateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD" and props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    ingest_id, _ = function(dev.template, "ingest")
    failure_id, _ = function(dev.template, "ingestion_failure")
    assert props["DefinitionSubstitutions"] == {"IngestFunctionArn": arn_of(ingest_id),
                                                "IngestionFailureFunctionArn": arn_of(failure_id)}
    text = (dev.outdir / f"asset.{props['DefinitionS3Location']['Key']}").read_text()
    assert text == (PROJECT_ROOT / "functions/ksflow/orchestration/ingest_document.asl.json").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(props["DefinitionSubstitutions"])
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    invocable = allowed(role_statements(dev.template, role_id), "lambda:InvokeFunction")
    assert sorted(map(json.dumps, invocable)) == sorted(map(json.dumps, [arn_of(ingest_id), arn_of(failure_id)]))
    assert machine_id


def test_outputs_name_the_bucket_and_the_ingestion_machine(dev: Synth) -> None:
    outputs = dev.template.find_outputs("*")
    assert {"DocumentsBucketName", "IngestionStateMachineArn"} <= set(outputs)


def test_browsers_on_the_api_origin_may_put_upload_parts_and_read_their_etag(dev: Synth) -> None:
    _, bucket = _documents_bucket(dev)
    [rule] = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "PUT"] and rule["ExposedHeaders"] == ["ETag"]
    [origin] = rule["AllowedOrigins"]  # cdk.json adds no other origin: only the API's own
    api_id, _ = next(iter(dev.template.find_resources("AWS::ApiGatewayV2::Api").items()))
    assert origin == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}  # https://{id}.execute-api.{region}.amazonaws.com


def test_more_upload_origins_come_from_the_environment_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.infra.conftest import cdk_json_context, synth

    environments = cdk_json_context()["environments"]
    custom = {**environments, "dev": {**environments["dev"], "upload_cors_origins": ["https://console.example/"]}}
    synthesized = synth("dev", tmp_path_factory.mktemp("cdk-cors"), environments=custom)
    _, bucket = _documents_bucket(synthesized)
    [rule] = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"][1:] == ["https://console.example"]


def test_unfinished_direct_uploads_are_removed_after_a_day(dev: Synth) -> None:
    _, bucket = _documents_bucket(dev)
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)
    [tagged] = [r for r in rules if r.get("TagFilters")]
    assert tagged["TagFilters"] == [{"Key": "ksflow-upload", "Value": "pending"}] and tagged["Prefix"] == "tenants/"
    assert tagged["ExpirationInDays"] == 1 and tagged["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert tagged["Status"] == "Enabled"
