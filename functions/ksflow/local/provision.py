"""Create ksflow's AWS resources on moto: the local counterpart of the CDK stack.

Resource shapes (table keys, handlers, ASL) come from the same sources CDK uses; only
what CDK adds for production (alarms, IAM scoping, log retention) is left out. The
Scheduler groups, roles and dead-letter queue exist so schedules are created as in AWS;
`scheduler` (the emulator) fires them.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3

from ksflow import catalog
from ksflow.runindex import layout

TABLE_NAME = "ksflow"
SCHEDULER_GROUP = "ksflow-runs"
DEFINITION_SCHEDULE_GROUP = "ksflow-schedules"
DEFINITION_SCHEDULE_DLQ = "ksflow-definition-schedules-dlq"
DOCUMENTS_BUCKET = "ksflow-documents"
SECRETS_KEY_ALIAS = "alias/ksflow-webhook-secrets"
DOCUMENTS_KEY_ALIAS = "alias/ksflow-documents"
FUNCTION_TIMEOUTS = {"Api": 30, "Dispatcher": 120, "RunFailure": 30, "Expiry": 30, "Reconcile": 30, "Ingest": 900,
                     "IngestionFailure": 30, "ScheduleFire": 30, "DeleteBatch": 120}


def _placeholder_code() -> bytes:
    """moto stores a zip per function; invocations run the installed package instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Handlers run in-process from the installed ksflow package.")
    return buffer.getvalue()


def _index(name: str, partition_key: str, sort_key: str, projection: dict[str, Any]) -> dict[str, Any]:
    return {"IndexName": name, "Projection": projection,
            "KeySchema": [{"AttributeName": partition_key, "KeyType": "HASH"},
                          {"AttributeName": sort_key, "KeyType": "RANGE"}]}


def _run_index(index: layout.RunIndex) -> dict[str, Any]:
    projection = ({"ProjectionType": "KEYS_ONLY"} if index.include is None
                  else {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.include)})
    return _index(index.name, layout.PARTITION, index.sort_key, projection)


def create_table(dynamodb: Any, name: str = TABLE_NAME) -> None:
    """The table with gsi1 and every run index (a deployed stack may have only the first few)."""
    indexes = [_index("gsi1", "gsi1pk", "gsi1sk", {"ProjectionType": "ALL"}),
               *(_run_index(index) for index in layout.RUN_INDEXES)]
    key_attributes = dict.fromkeys(key["AttributeName"] for index in indexes for key in index["KeySchema"])
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", *key_attributes)],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=indexes,
    )


def kms_key(kms: Any, alias: str, description: str) -> str:
    """The key behind `alias`, created if absent: a restored data directory brings its keys back first."""
    try:
        key_id: str = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except kms.exceptions.NotFoundException:
        key_id = kms.create_key(Description=description)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def create_documents_bucket(s3: Any, kms: Any, name: str = DOCUMENTS_BUCKET) -> None:
    """Versioned, with SSE-KMS under its own key by default, as CDK declares it."""
    key_id = kms_key(kms, DOCUMENTS_KEY_ALIAS, "ksflow documents")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
        "BucketKeyEnabled": True,
    }]})
    # The console PUTs upload parts from the browser and reads each part's ETag, as the CDK bucket's CORS rule
    # allows; any origin here, as the stack listens on loopback under whichever name the browser uses.
    s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["PUT", "GET"], "AllowedOrigins": ["*"],
        "AllowedHeaders": ["content-type", "content-length", "content-md5"], "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    }]})


def _state_machine(sfn: Any, name: str, file_name: str, substitutions: dict[str, str], arns: dict[str, str],
                   role_arn: str) -> str:
    definition = catalog.render_asl(file_name, {placeholder: arns[function]
                                                for placeholder, function in substitutions.items()})
    arn: str = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role_arn,
                                        type="STANDARD")["stateMachineArn"]
    return arn


def _role(iam: Any, name: str) -> str:
    arn: str = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    return arn


def provision(session: boto3.Session | None = None, *, allow_loopback_runners: bool,
              public_api_url: str, expiry_grace_seconds: int = 60) -> dict[str, str]:
    """Create every resource; returns the environment the handlers read their settings from."""
    session = session or boto3.Session()
    iam, kms, lam = session.client("iam"), session.client("kms"), session.client("lambda")
    sfn, scheduler = session.client("stepfunctions"), session.client("scheduler")
    role_arn = _role(iam, "ksflow-local")
    key_id = kms_key(kms, SECRETS_KEY_ALIAS, "ksflow webhook secrets")
    create_table(session.client("dynamodb"))
    create_documents_bucket(session.client("s3"), kms)
    arns = {
        name: lam.create_function(
            FunctionName=f"ksflow-{name}", Runtime="python3.12", Role=role_arn, Handler=handler,
            Code={"ZipFile": _placeholder_code()}, Timeout=FUNCTION_TIMEOUTS[name], Architectures=["arm64"],
        )["FunctionArn"]
        for name, handler in catalog.HANDLERS.items()
    }
    machine_arn = _state_machine(sfn, "ksflow-run", catalog.RUN_STATE_MACHINE_FILE,
                                 catalog.RUN_STATE_MACHINE_SUBSTITUTIONS, arns, role_arn)
    ingestion_machine_arn = _state_machine(sfn, "ksflow-ingestion", catalog.INGESTION_STATE_MACHINE_FILE,
                                           catalog.INGESTION_STATE_MACHINE_SUBSTITUTIONS, arns, role_arn)
    deletion_machine_arn = _state_machine(sfn, "ksflow-deletion", catalog.DELETION_STATE_MACHINE_FILE,
                                          catalog.DELETION_STATE_MACHINE_SUBSTITUTIONS, arns, role_arn)
    scheduler.create_schedule_group(Name=SCHEDULER_GROUP)
    scheduler.create_schedule_group(Name=DEFINITION_SCHEDULE_GROUP)
    sqs = session.client("sqs")
    dlq_url = sqs.create_queue(QueueName=DEFINITION_SCHEDULE_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {
        "TABLE_NAME": TABLE_NAME,
        "KMS_KEY_ID": key_id,
        "RUN_STATE_MACHINE_ARN": machine_arn,
        "PUBLIC_API_URL": public_api_url,
        "SCHEDULER_GROUP_NAME": SCHEDULER_GROUP,
        "SCHEDULER_ROLE_ARN": role_arn,
        "EXPIRY_FUNCTION_ARN": arns["Expiry"],
        "ALLOW_LOOPBACK_RUNNERS": "true" if allow_loopback_runners else "false",
        "EXPIRY_GRACE_SECONDS": str(expiry_grace_seconds),
        "DOCUMENTS_BUCKET": DOCUMENTS_BUCKET,
        "INGESTION_STATE_MACHINE_ARN": ingestion_machine_arn,
        "DELETION_STATE_MACHINE_ARN": deletion_machine_arn,
        "SCHEDULE_GROUP_NAME": DEFINITION_SCHEDULE_GROUP,
        "SCHEDULE_FUNCTION_ARN": arns["ScheduleFire"],
        "SCHEDULE_ROLE_ARN": _role(iam, "ksflow-local-definition-schedules"),
        "SCHEDULE_DLQ_ARN": dlq_arn,
    }
