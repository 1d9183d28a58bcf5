"""Knowledge-base listings at 10 and 10,000 children: what their first page costs, counted rather than timed.

Through the API handler on moto, as `benchmarks.cost` measures run listings (its counter: AWS calls
and DynamoDB items read, a Query's evaluated items plus every key a Get or BatchGet asks for). Each
size is a tenant with one folder of that many documents, each with its version's ingestion, written
by the real writers: their transactions are recorded and replayed as batch writes, since moto
copies the whole table for every transaction. Run: `python -m benchmarks.knowledge_listings`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from benchmarks import cost, publish
from ksflow import aws
from ksflow.identity import store as identity
from ksflow.identity.models import Principal, Role
from ksflow.ingestion import service as ingestion
from ksflow.ingestion import store as ingestion_store
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import DocumentOrigin, DocumentType, PartType
from ksflow.local import provision

RESULTS = Path(".bench/knowledge_listings.json")
SIZES = {"children_10": 10, "children_10000": 10_000}
PAGE = 20
TARGET_RATIO = 1.2


def _summed_additions(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Updates that only ADD (counts, `aws.adding`) summed into one per item; the others as they are, in order."""
    sums: dict[str, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for update in updates:
        if not update["UpdateExpression"].startswith("ADD ") or "ConditionExpression" in update:
            others.append(update)
            continue
        item = json.dumps(update["Key"], sort_keys=True)
        names = update.get("ExpressionAttributeNames", {})
        amounts = sums.setdefault(item, {"key": update["Key"], "amounts": Counter()})["amounts"]
        for added in update["UpdateExpression"].removeprefix("ADD ").split(","):
            name, value = added.split()
            amounts[names.get(name, name)] += update["ExpressionAttributeValues"][value]
    table_name = os.environ["TABLE_NAME"]
    return others + [aws.adding(table_name, total["key"], total["amounts"])["Update"] for total in sums.values()]


@contextmanager
def replayed_as_batches() -> Iterator[None]:
    """The transactions written meanwhile, applied at the end: their puts straight into moto's table, their updates
    (counts summed per item, parents) one call each with their conditions; condition checks are left out
    (the writers' reads passed). moto would copy the whole table for every transaction."""
    table = aws.table(os.environ["TABLE_NAME"])
    client = table.meta.client
    recorded: list[dict[str, Any]] = []

    def record(TransactItems: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        recorded.extend(TransactItems)
        return {}

    client.transact_write_items = record
    try:
        yield
    finally:
        del client.transact_write_items
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    typed = TypeSerializer()
    for entry in recorded:
        if "Put" in entry:
            backend.put_item(table.name, {name: typed.serialize(value) for name, value in entry["Put"]["Item"].items()})
    for update in _summed_additions([entry["Update"] for entry in recorded if "Update" in entry]):
        client.update_item(**update)
    assert not [entry for entry in recorded if "Delete" in entry], "a writer deleted items: not replayed"


def seed_folder(principal: Principal, root_id: str, count: int) -> str:
    """A folder under the root of `count` documents, each with its uploaded version's ingestion; the folder's id."""
    root = knowledge.get_path_parts(principal.tenant_id, [root_id])[root_id]
    folder = knowledge.create_folder(principal, root, "library")
    upload = ingestion.Upload(file_name="policy.txt", content_type="text/plain", data=b"x" * 1024)
    with replayed_as_batches():
        for n in range(count):
            document, version = knowledge.new_document(principal, folder, f"policy-{n:05d}.txt",
                                                       DocumentType.PLAINTEXT, DocumentOrigin.SOURCE)
            record = ingestion._new_ingestion(principal, document, version, upload)
            knowledge.store_document(folder, document, version, ingestion_store.put_request(record))
    return folder.metadata_obj_id


def measure(counter: cost.CallCounter, path: str, api_key: str) -> dict[str, Any]:
    cost.request("GET", path, api_key)  # warm: the key and grants cached, as in a warm Lambda container
    started = time.monotonic()
    with counter.measuring():
        status, body = cost.request("GET", path, api_key)
    seconds = round(time.monotonic() - started, 2)
    assert status == 200, (path, status, body)
    # Seconds on moto, which reads a partition far slower than DynamoDB: where the bench's time goes, not latency.
    return {"aws_calls": sum(counter.calls.values()), "calls": dict(counter.calls), "items_read": counter.items_read,
            "returned": len(body["items"]), "total": body["total"], "moto_seconds": seconds}


def main() -> dict[str, Any]:
    counter = cost.CallCounter()
    identity.AUTH_CACHE_SECONDS = 3600
    listings: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    with mock_aws():
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", counter.before_call)
        session.events.register("after-call", counter.after_call)
        session.events.register("before-parameter-build.dynamodb.BatchGetItem", counter.keys_asked)
        os.environ.update(provision.provision(allow_loopback_runners=True, public_api_url="http://127.0.0.1:1"))
        for label, count in SIZES.items():
            tenant = identity.create_tenant(f"Listings {count}", f"owner@{count}.example.com")
            owner = Principal(tenant_id=tenant.tenant_id, user_id=tenant.user_id, role=Role.OWNER)
            started = time.monotonic()
            folder_id = seed_folder(owner, tenant.root_path_part_id, count)
            seconds[label] = round(time.monotonic() - started, 1)
            member = identity.create_user(tenant.tenant_id, f"member@{count}.example.com", Role.USER)
            folder = knowledge.get_by_object_id(tenant.tenant_id, folder_id, PartType.FOLDER)
            assert folder is not None
            granted, _ = cost.request("POST", "/v1/user-permissions", tenant.api_key, {
                "tenant_id": tenant.tenant_id, "user_id": member.user_id, "path_part_id": folder.path_part_id,
                "capability": "READ_ONLY"})
            assert granted == 201, granted
            pages = {
                "folder_contents": (f"/v1/folders/{folder_id}/contents?limit={PAGE}", tenant.api_key),
                "ingestions": (f"/v1/workflows/document_versions?limit={PAGE}", tenant.api_key),
                "ingestions_as_user": (f"/v1/workflows/document_versions?limit={PAGE}", member.api_key),
            }
            for name, (path, api_key) in pages.items():
                numbers = measure(counter, path, api_key)
                assert (numbers["total"], numbers["returned"]) == (count, min(PAGE, count)), (name, numbers)
                listings.setdefault(name, {"path": path.split("?")[0]})[label] = numbers
    for numbers in listings.values():
        # Per item returned, as `benchmarks.cost` compares run listings: the page of 10 children holds only 10.
        small, large = (numbers[label] for label in SIZES)
        numbers["ratio"] = round(large["items_read"] / large["returned"] / (small["items_read"] / small["returned"]), 3)
    return {"page_size": PAGE, "listings": listings, "seed_seconds": seconds}


# Held to the target; a USER's ingestion list filters every entry of the tenant by lineage (shown, not held).
HELD = ("folder_contents", "ingestions")


def report(results: dict[str, Any]) -> str:
    lines = [f"knowledge listings, first page (limit={results['page_size']}, default sort) as the OWNER: items read "
             "(returned), AWS calls, with 10 children and with 10,000"]
    for name, numbers in results["listings"].items():
        small, large = numbers["children_10"], numbers["children_10000"]
        target = f"(target {TARGET_RATIO})" if name in HELD else "(a USER's filtered path, not held)"
        lines.append(f"  {name:<20}{small['items_read']:>8} ({small['returned']:>2}), {small['aws_calls']} calls"
                     f"{large['items_read']:>8} ({large['returned']:>2}), {large['aws_calls']} calls   "
                     f"ratio {numbers['ratio']} {target}")
    lines.append("  ratio: items read per item returned with 10,000 children over the same with 10; items read are "
                 "those a Query evaluated and every key a Get or BatchGet asked for")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = main()
    publish(outcome, RESULTS, report(outcome))
    missed = [name for name in HELD if outcome["listings"][name]["ratio"] > TARGET_RATIO]
    if missed:
        print(f"over the {TARGET_RATIO} target: {', '.join(missed)}")
