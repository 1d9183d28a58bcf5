"""Each function's role holds only the table actions its code calls, in the partitions it works in."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from ksflow import aws
from ksflow.config import settings
from ksflow.identity.models import CreatedTenant
from ksflow.runindex.layout import RUN_INDEXES
from tests.infra.conftest import Synth
from tests.infra.test_infra_stack import (
    HANDLERS,
    allowed,
    arn_of,
    as_list,
    function,
    function_role,
    role_statements,
    state_machine,
)

# Read the run, then update it and put the events of the change in one transaction (workflows/run_store.py).
RUN_CHANGES = {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"}
# Table statements (actions, LeadingKeys allow-list) per function; None: every partition (the API serves them all).
TABLE_ACCESS: dict[str, list[tuple[set[str], list[str] | None]]] = {
    "api": [({"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
              "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, None),
            # Its indexes: only queried.
            ({"dynamodb:Query"}, None)],
    "dispatcher": [(RUN_CHANGES, ["RUN#*"])],
    "run_failure": [(RUN_CHANGES, ["RUN#*"])],
    "expiry": [(RUN_CHANGES, ["RUN#*"])],
    "reconcile": [(RUN_CHANGES, ["RUN#*"])],
    "ingest": [({"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                 "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"}, ["TENANT#*"])],
    "ingestion_failure": [({"dynamodb:UpdateItem"}, ["TENANT#*"])],
    # Background deletes: parts through their claims, fences, batched removals (deletion/cascade.py).
    "delete_batch": [({"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem",
                       "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, ["TENANT#*", "INGESTIONS#*"])],
    # Invokes definitions as their creator: reads that creator's user item, writes no identity item.
    "schedule_fire": [
        ({"dynamodb:GetItem", "dynamodb:BatchGetItem"}, ["TENANT#*", "WORKFLOWDEF#*", "IDENTITY#*", "RUN#*"]),
        ({"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"},
         ["TENANT#*", "WORKFLOWDEF#*", "RUN#*"]),
        # A run withdrawn because its execution did not start loses its history too: in its own partition.
        ({"dynamodb:Query", "dynamodb:BatchWriteItem"}, ["RUN#*"]),
    ],
}
# Functions besides the API that may read users (never keys): their role decides what a definition can reach.
IDENTITY_READERS = {"schedule_fire"}
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:BatchGetItem"}
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
    statements = _table_statements(dev, name)
    assert sorted((sorted(as_list(s["Action"])), _leading_keys(s)) for s in statements) == sorted(
        (sorted(actions), partitions) for actions, partitions in TABLE_ACCESS[name])
    table_id, _ = next(iter(dev.template.find_resources("AWS::DynamoDB::Table").items()))
    # Only the API queries indexes, each by name (no index/* wildcard).
    indexes = [{"Fn::Join": ["", [arn_of(table_id), f"/index/{index}"]]}
               for index in ("gsi1", *(run_index.name for run_index in RUN_INDEXES))]
    for statement in statements:
        on_indexes = name == "api" and as_list(statement["Action"]) == ["dynamodb:Query"]
        assert sorted(map(json.dumps, as_list(statement["Resource"]))) == sorted(
            map(json.dumps, indexes if on_indexes else [arn_of(table_id)]))


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
    """Users and keys, as the code writes them, are in no partition a function other than the API may write.

    Only IDENTITY_READERS may read the identity partition (a definition's creator); API keys stay out of reach.
    """
    writable: list[str] = []
    readable: dict[str, list[str]] = {}
    for name in TABLE_ACCESS.keys() - {"api"}:
        for statement in _table_statements(dev, name):
            reads_only = READ_ACTIONS.issuperset(as_list(statement["Action"]))
            (readable.setdefault(name, []) if reads_only else writable).extend(_leading_keys(statement) or [])
    assert writable and readable.keys() >= IDENTITY_READERS
    items = aws.table(settings().table_name).scan()["Items"]
    identity = [item for item in items if str(item["sk"]).startswith(IDENTITY_SORT_KEYS)]
    assert {str(item["sk"]).split("#")[0] for item in identity} == {"USER", "USERKEY", "APIKEY"}
    for item in identity:
        assert not [p for p in writable if fnmatchcase(item["pk"], p)], item["pk"]
        for name, patterns in readable.items():
            if name in IDENTITY_READERS and item["sk"] != "APIKEY":
                continue
            assert not [p for p in patterns if fnmatchcase(item["pk"], p)], (name, item["pk"])
    # The tenant's knowledge base (its root folder) stays where ingestion may reach it.
    assert any(fnmatchcase(item["pk"], "TENANT#*") for item in items if str(item["sk"]).startswith("PATHPART#"))


def test_background_deletion_reaches_only_what_a_delete_removes(dev: Synth) -> None:
    """The deletion task removes stored file versions and stops ingestions; it reads and writes nothing else."""
    statements = role_statements(dev.template, function_role(dev.template, "delete_batch"))
    actions = {str(a) for s in statements for a in as_list(s["Action"])}
    assert {a for a in actions if a.startswith(("s3:", "states:"))} == {
        "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucketVersions", "states:StopExecution"}
    assert not {a for a in actions if a.startswith("kms:") and a not in {
        "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}}
    stoppable = allowed(statements, "states:StopExecution")
    assert len(stoppable) == 1 and "DocumentsIngestionStateMachine" in json.dumps(stoppable)
    _, machine = state_machine(dev.template, "DeletionDeletionStateMachine")
    invoked = allowed(role_statements(dev.template, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]),
                      "lambda:InvokeFunction")
    assert [json.dumps(arn) for arn in invoked] == [json.dumps(arn_of(function(dev.template, "delete_batch")[0]))]
