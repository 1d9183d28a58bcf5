"""The run indexes: on the table in deploy order, as many as `run_index_count` says, queried only by the API."""

from __future__ import annotations

from typing import Any

import pytest

from ksflow.local import provision
from ksflow.runindex import layout
from tests.infra.conftest import Synth, synth
from tests.infra.test_infra_stack import allowed, arn_of, function, function_role, only, role_statements

DEPLOYED_FIRST = 3


@pytest.fixture(scope="module")
def first_three(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """An existing stack partway through its upgrade: deployed with `-c run_index_count=3`."""
    return synth("dev", tmp_path_factory.mktemp("cdk-dev-3"), run_index_count=str(DEPLOYED_FIRST))


def _table(synth: Synth) -> tuple[str, dict[str, Any]]:
    return only(synth.template, "AWS::DynamoDB::Table")


def _run_indexes(synth: Synth) -> list[dict[str, Any]]:
    _, table = _table(synth)
    return [index for index in table["Properties"]["GlobalSecondaryIndexes"] if index["IndexName"] != "gsi1"]


def _expected(index: layout.RunIndex) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": "KEYS_ONLY"}
    if index.include is not None:
        projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.include)}
    return {
        "IndexName": index.name,
        "KeySchema": [{"AttributeName": layout.PARTITION, "KeyType": "HASH"},
                      {"AttributeName": index.sort_key, "KeyType": "RANGE"}],
        "Projection": projection,
    }


def _api_environment(synth: Synth) -> dict[str, Any]:
    _, api = function(synth.template, "api")
    variables: dict[str, Any] = api["Properties"]["Environment"]["Variables"]
    return variables


def _queryable_indexes(synth: Synth) -> list[str]:
    """The index names the API role may Query (sorted, as IAM policy minimization leaves them)."""
    table_id, _ = _table(synth)
    statements = role_statements(synth.template, function_role(synth.template, "api"))
    names = []
    for resource in allowed(statements, "dynamodb:Query"):
        if resource != arn_of(table_id):
            arn, suffix = resource["Fn::Join"][1]
            assert arn == arn_of(table_id) and suffix.startswith("/index/"), resource
            names.append(suffix.removeprefix("/index/"))
    return sorted(names)


def test_every_run_index_by_default(dev: Synth) -> None:
    assert _run_indexes(dev) == [_expected(index) for index in layout.RUN_INDEXES]
    [by_created, *others] = _run_indexes(dev)
    # Every filter is answered from runs-by-created without reading runs; the others hold keys only.
    assert by_created["IndexName"] == "runs-by-created"
    assert by_created["Projection"] == {"ProjectionType": "INCLUDE",
                                        "NonKeyAttributes": list(layout.FILTER_ATTRIBUTES)}
    assert {index["Projection"]["ProjectionType"] for index in others} == {"KEYS_ONLY"}
    _, table = _table(dev)
    definitions = {a["AttributeName"]: a["AttributeType"] for a in table["Properties"]["AttributeDefinitions"]}
    assert definitions == dict.fromkeys(
        ["pk", "sk", "gsi1pk", "gsi1sk", layout.PARTITION, *(index.sort_key for index in layout.RUN_INDEXES)], "S")
    assert _api_environment(dev)["RUN_INDEX_COUNT"] == str(len(layout.RUN_INDEXES))


def test_a_count_deploys_only_the_first_indexes(first_three: Synth) -> None:
    assert _run_indexes(first_three) == [_expected(index) for index in layout.RUN_INDEXES[:DEPLOYED_FIRST]]
    _, table = _table(first_three)
    sort_keys = {index.sort_key for index in layout.RUN_INDEXES[DEPLOYED_FIRST:]}
    assert not sort_keys & {a["AttributeName"] for a in table["Properties"]["AttributeDefinitions"]}
    assert _api_environment(first_three)["RUN_INDEX_COUNT"] == str(DEPLOYED_FIRST)
    assert _queryable_indexes(first_three) == sorted(
        ["gsi1", *(index.name for index in layout.RUN_INDEXES[:DEPLOYED_FIRST])])


def test_the_api_may_query_every_run_index(dev: Synth) -> None:
    assert _queryable_indexes(dev) == sorted(["gsi1", *(index.name for index in layout.RUN_INDEXES)])


@pytest.mark.parametrize("count", [len(layout.RUN_INDEXES) + 1, "-1"])
def test_a_count_out_of_range_stops_the_synth(tmp_path_factory: pytest.TempPathFactory, count: object) -> None:
    with pytest.raises(ValueError, match=f"run_index_count must be a whole number from 0 to {len(layout.RUN_INDEXES)}"):
        synth("dev", tmp_path_factory.mktemp("cdk-dev-bad"), run_index_count=count)


def test_the_local_table_has_the_stacks_indexes(dev: Synth) -> None:
    """The local stack (and every test on it) creates the table the stack declares, every run index included."""
    calls: list[dict[str, Any]] = []

    class Recorder:
        def create_table(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    provision.create_table(Recorder())
    [local] = calls
    _, table = _table(dev)
    props = table["Properties"]
    assert local["KeySchema"] == props["KeySchema"]
    assert local["GlobalSecondaryIndexes"] == props["GlobalSecondaryIndexes"]
    assert sorted(local["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
