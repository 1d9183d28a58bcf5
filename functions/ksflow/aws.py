"""boto3 clients, created once per process (Lambda container or local stack).

Endpoints come from the standard AWS_ENDPOINT_URL variables, so the same code talks to
AWS, to moto's in-process mock, or to the local stack's moto server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


def batch_get(table_: Any, keys: Sequence[dict[str, Any]], *, consistent: bool) -> list[dict[str, Any]]:
    """The items that exist among `keys`, in as few reads as DynamoDB allows (100 keys a request)."""
    unique = list({tuple(sorted(key.items())): key for key in keys}.values())
    found: list[dict[str, Any]] = []
    for start in range(0, len(unique), 100):
        request: dict[str, Any] = {table_.name: {"Keys": unique[start:start + 100], "ConsistentRead": consistent}}
        while request:
            response = table_.meta.client.batch_get_item(RequestItems=request)
            found.extend(response["Responses"].get(table_.name, []))
            request = response.get("UnprocessedKeys") or {}
    return found


def query(table_: Any, request: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """Every item a Query matches, page after page; with `limit`, no more than that many are read."""
    request = dict(request)
    items: list[dict[str, Any]] = []
    while True:
        if limit is not None:
            request["Limit"] = limit - len(items)
        page = table_.query(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def count(table_: Any, request: dict[str, Any]) -> int:
    """How many items a Query matches, page after page (Select=COUNT: no items are returned)."""
    request = {**request, "Select": "COUNT"}
    total = 0
    while True:
        page = table_.query(**request)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def adding(table_name: str, key: dict[str, str], amounts: Mapping[str, int]) -> dict[str, Any]:
    """A TransactWriteItems Update that ADDs each non-zero amount to its counter (created at 0 if absent)."""
    moved = {name: amount for name, amount in amounts.items() if amount}
    return {"Update": {"TableName": table_name, "Key": key,
                       "UpdateExpression": "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(moved))),
                       "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(moved)},
                       "ExpressionAttributeValues": {f":a{i}": amount for i, amount in enumerate(moved.values())}}}


def failed_conditions(error: BaseException) -> set[int]:
    """Indexes of a cancelled transaction's items whose condition failed; empty for any other error."""
    if not isinstance(error, ClientError) or error.response["Error"]["Code"] != "TransactionCanceledException":
        return set()
    reasons = error.response.get("CancellationReasons", [])
    return {index for index, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}


def as_item(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-shaped values as DynamoDB takes them: numbers with a fraction become Decimal."""
    return dict(json.loads(json.dumps(values), parse_float=Decimal))


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item's values as JSON has them: DynamoDB's Decimal numbers become int or float again.

    Needed where a model keeps free-form values (typed fields convert by themselves)."""
    return dict(json.loads(json.dumps(item, default=_number)))
