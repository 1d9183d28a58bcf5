"""Uploaded files in the documents bucket (versioned, SSE-KMS by the bucket's default encryption).

Key: `tenants/{tenant_id}/document-versions/{document_version_id}/{safe file name}`. The
bucket's default encryption names the customer key, so requests carry no encryption headers:
naming only `aws:kms` in a request would pick the AWS-managed key instead.
"""

from __future__ import annotations

import re
from typing import Any

from ksflow import aws
from ksflow.config import settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _bucket() -> str:
    return settings().documents_bucket


def version_prefix(tenant_id: str, document_version_id: str) -> str:
    return f"tenants/{tenant_id}/document-versions/{document_version_id}/"


def object_key(tenant_id: str, document_version_id: str, file_name: str) -> str:
    safe = _UNSAFE.sub("_", file_name).strip("._")[:200] or "file"
    return version_prefix(tenant_id, document_version_id) + safe


def put(key: str, data: bytes, content_type: str | None) -> None:
    aws.client("s3").put_object(Bucket=_bucket(), Key=key, Body=data,
                                ContentType=content_type or "application/octet-stream")


def read(key: str) -> bytes:
    body: bytes = aws.client("s3").get_object(Bucket=_bucket(), Key=key)["Body"].read()
    return body


def delete_all_versions(prefixes: list[str]) -> None:
    """Every version and delete marker under the prefixes: the bucket keeps old versions otherwise."""
    s3 = aws.client("s3")
    for prefix in prefixes:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=_bucket(), Prefix=prefix):
            entries: list[dict[str, Any]] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if entries:
                s3.delete_objects(Bucket=_bucket(), Delete={"Objects": entries, "Quiet": True})
