"""Create ksflow's AWS resources on moto: the local counterpart of the CDK stack.

Resource shapes (table keys, handlers, ASL) come from the same sources CDK uses; only
what CDK adds for production (alarms, IAM scoping, log retention) is left out.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3

from ksflow import catalog

TABLE_NAME = "ksflow"
SCHEDULER_GROUP = "ksflow-runs"
FUNCTION_TIMEOUTS = {"Api": 30, "Dispatcher": 120, "RunFailure": 30, "Expiry": 30, "Reconcile": 30}


def _placeholder_code() -> bytes:
    """moto stores a zip per function; invocations run the installed package instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Handlers run in-process from the installed ksflow package.")
    return buffer.getvalue()


def create_table(dynamodb: Any, name: str = TABLE_NAME) -> None:
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "gsi1",
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )


def provision(session: boto3.Session | None = None, *, allow_loopback_runners: bool,
              public_api_url: str, expiry_grace_seconds: int = 60) -> dict[str, str]:
    """Create every resource; returns the environment the handlers read their settings from."""
    session = session or boto3.Session()
    iam, kms, lam = session.client("iam"), session.client("kms"), session.client("lambda")
    sfn, scheduler = session.client("stepfunctions"), session.client("scheduler")
    role_arn = iam.create_role(
        RoleName="ksflow-local", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    key_id = kms.create_key(Description="ksflow webhook secrets")["KeyMetadata"]["KeyId"]
    create_table(session.client("dynamodb"))
    arns = {
        name: lam.create_function(
            FunctionName=f"ksflow-{name}", Runtime="python3.12", Role=role_arn, Handler=handler,
            Code={"ZipFile": _placeholder_code()}, Timeout=FUNCTION_TIMEOUTS[name], Architectures=["arm64"],
        )["FunctionArn"]
        for name, handler in catalog.HANDLERS.items()
    }
    definition = catalog.render_asl(
        catalog.RUN_STATE_MACHINE_FILE,
        {placeholder: arns[function] for placeholder, function in catalog.RUN_STATE_MACHINE_SUBSTITUTIONS.items()},
    )
    machine_arn = sfn.create_state_machine(name="ksflow-run", definition=json.dumps(definition),
                                           roleArn=role_arn, type="STANDARD")["stateMachineArn"]
    scheduler.create_schedule_group(Name=SCHEDULER_GROUP)
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
    }
