"""Run snapshots too large for the run item, kept in the documents bucket.

The largest legal definition (61 references, each deep in the tree, with 4-byte names)
freezes into about 2 MB of JSON: past DynamoDB's 400 KB item limit even compressed. Such a
snapshot is written once, before its run item, under
`tenants/{tenant_id}/run-snapshots/{run_id}.json`; the item points at it.
"""

from __future__ import annotations

from ksflow import aws
from ksflow.config import settings
from ksflow.workflows.models import RunSnapshot

# Snapshots up to this size stay inline: the run item keeps room for the error text and the rest.
INLINE_LIMIT_BYTES = 64 * 1024


def object_key(tenant_id: str, run_id: str) -> str:
    return f"tenants/{tenant_id}/run-snapshots/{run_id}.json"


def put(key: str, body: bytes) -> None:
    aws.client("s3").put_object(Bucket=settings().documents_bucket, Key=key, Body=body,
                                ContentType="application/json")


def read(key: str) -> RunSnapshot:
    body = aws.client("s3").get_object(Bucket=settings().documents_bucket, Key=key)["Body"].read()
    return RunSnapshot.model_validate_json(body)


def delete(keys: list[str]) -> None:
    """Remove snapshots of deleted runs (the bucket's lifecycle expires the noncurrent versions)."""
    s3 = aws.client("s3")
    for start in range(0, len(keys), 1000):
        objects = [{"Key": key} for key in keys[start:start + 1000]]
        s3.delete_objects(Bucket=settings().documents_bucket, Delete={"Objects": objects, "Quiet": True})
