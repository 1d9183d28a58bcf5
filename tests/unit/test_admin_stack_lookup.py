"""`ksflow admin --stack-name`: the table of a deployed stack is found from its outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ksflow import aws, cli
from ksflow.identity import store as identity

TEMPLATE = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "sk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            },
        },
    },
    "Outputs": {"TableName": {"Value": {"Ref": "Table"}}, "Region": {"Value": {"Ref": "AWS::Region"}},
                "DefinitionScheduleGroupName": {"Value": "ksflow-prod-DefinitionScheduleGroup-1A2B"}},
}


@pytest.fixture
def deployed_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A stack named like a deployed one, in another region than the default, holding the table."""
    monkeypatch.delenv("TABLE_NAME", raising=False)
    with mock_aws():
        aws.client.cache_clear()
        aws.table.cache_clear()
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="ksflow-prod", TemplateBody=json.dumps(TEMPLATE))
        yield "ksflow-prod"
    aws.client.cache_clear()
    aws.table.cache_clear()


def test_create_tenant_finds_the_table_from_the_stack_outputs(deployed_stack: str,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    cli.main(["admin", "--stack-name", deployed_stack, "create-tenant", "--name", "Acme"])
    created = json.loads(capsys.readouterr().out)
    table_name = boto3.client("cloudformation").describe_stacks(StackName=deployed_stack)["Stacks"][0]["Outputs"]
    table = next(o["OutputValue"] for o in table_name if o["OutputKey"] == "TableName")
    item = boto3.resource("dynamodb").Table(table).get_item(
        Key={"pk": f"TENANT#{created['tenant_id']}", "sk": "TENANT"}).get("Item")
    assert item is not None and item["name"] == "Acme"
    assert identity.authenticate(created["api_key"]) is not None


def test_unknown_stack_is_a_clear_error(deployed_stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(SystemExit) as exited:
        cli.main(["admin", "--stack-name", "ksflow-missing", "create-tenant", "--name", "Acme"])
    assert "ksflow-missing" in str(exited.value)


def test_the_schedule_group_comes_from_the_stack_outputs(deployed_stack: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`admin fire-schedule` against a deployed stack finds the generated group name."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    found = cli.stack_settings(deployed_stack)
    assert found["SCHEDULE_GROUP_NAME"] == "ksflow-prod-DefinitionScheduleGroup-1A2B"
    assert found["AWS_DEFAULT_REGION"] == "eu-west-1" and found["TABLE_NAME"]
