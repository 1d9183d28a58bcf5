"""Each function's role holds only the table actions its code calls, in the partitions it works in."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from ksflow import aws
from ksflow.config import settings
from ksflow.identity.models import CreatedTenant
from tests.infra.conftest import Synth
from tests.infra.test_infra_stack import HANDLERS, arn_of, as_list, function_role, role_statements

READ_WRITE_ITEMS = {"dynamodb:GetItem", "dynamodb:UpdateItem"}
# Table actions and LeadingKeys allow-list per function; None: every partition (the API serves them all).
TABLE_ACCESS: dict[str, tuple[set[str], list[str] | None]] = {
    "api": ({"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
             "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, None),
    "dispatcher": (READ_WRITE_ITEMS, ["RUN#*"]),
    "run_failure": (READ_WRITE_ITEMS, ["RUN#*"]),
    "expiry": (READ_WRITE_ITEMS, ["RUN#*"]),
    "reconcile": ({"dynamodb:UpdateItem"}, ["RUN#*"]),
    "ingest": ({"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem"}, ["TENANT#*"]),
    "ingestion_failure": ({"dynamodb:UpdateItem"}, ["TENANT#*"]),
}
IDENTITY_SORT_KEYS = ("USER#", "USERKEY#", "APIKEY")


def _table_statements(synth: Synth, name: str) -> list[dict[str, Any]]:
    table_id, _ = next(iter(synth.template.find_resources("AWS::DynamoDB::Table").items()))
    return [s for s in role_statements(synth.template, function_role(synth.template, name))
            if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))
            and table_id in json.dumps(s["Resource"])]


def _leading_keys(statement: dict[str, Any]) -> list[str] | None:
    condition = statement.get("Condition")
    if condition is None:
        return None
    keys: list[str] = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    return keys


@pytest.mark.parametrize("name", sorted(TABLE_ACCESS))
def test_table_actions_and_partitions_per_function(dev: Synth, name: str) -> None:
    actions, partitions = TABLE_ACCESS[name]
    [statement] = _table_statements(dev, name)
    assert set(as_list(statement["Action"])) == actions
    assert _leading_keys(statement) == partitions
    table_id, _ = next(iter(dev.template.find_resources("AWS::DynamoDB::Table").items()))
    resources = as_list(statement["Resource"])
    # Only the API queries the index, and only gsi1 by name (no index/* wildcard).
    expected = [arn_of(table_id)] + (
        [{"Fn::Join": ["", [arn_of(table_id), "/index/gsi1"]]}] if name == "api" else [])
    assert resources == expected


def test_no_role_scans_or_holds_a_dynamodb_wildcard(dev: Synth) -> None:
    for policy in dev.template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(statement["Action"])
            assert "dynamodb:Scan" not in actions
            assert not [a for a in actions if str(a).startswith("dynamodb:") and "*" in str(a)]
            assert "/index/*" not in json.dumps(statement["Resource"])


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_table_key_is_usable_only_through_dynamodb(dev: Synth, name: str) -> None:
    _, table = next(iter(dev.template.find_resources("AWS::DynamoDB::Table").items()))
    key = table["Properties"]["SSESpecification"]["KMSMasterKeyId"]
    on_key = [s for s in role_statements(dev.template, function_role(dev.template, name))
              if key in as_list(s["Resource"])]
    assert on_key
    for statement in on_key:
        via = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert "dynamodb." in json.dumps(via)


def test_identity_items_lie_outside_every_allow_list(dev: Synth, tenant: CreatedTenant) -> None:
    """Users and keys, as the code writes them, are in no partition a function other than the API may reach."""
    patterns = [p for name in TABLE_ACCESS if name != "api"
                for statement in _table_statements(dev, name) for p in _leading_keys(statement) or []]
    assert patterns
    items = aws.table(settings().table_name).scan()["Items"]
    identity = [item for item in items if str(item["sk"]).startswith(IDENTITY_SORT_KEYS)]
    assert {str(item["sk"]).split("#")[0] for item in identity} == {"USER", "USERKEY", "APIKEY"}
    for item in identity:
        assert not [p for p in patterns if fnmatchcase(item["pk"], p)], item["pk"]
    # The tenant's knowledge base (its root folder) stays where ingestion may reach it.
    assert any(fnmatchcase(item["pk"], "TENANT#*") for item in items if str(item["sk"]).startswith("PATHPART#"))
