"""Uploaded files in the documents bucket (versioned, SSE-KMS by the bucket's default encryption).

Key: `tenants/{tenant_id}/document-versions/{document_version_id}/{safe file name}`. The
bucket's default encryption names the customer key, so requests carry no encryption headers:
naming only `aws:kms` in a request would pick the AWS-managed key instead.

Ingestion reads files of any size in blocks (ranged GETs), never whole: `Blocks` for the text
it streams, `Blocks.seekable()` for pypdf, which jumps around a PDF; memory is the block size
times the few blocks kept.
"""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from typing import Any

from botocore.exceptions import ClientError

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


class Blocks:
    """An object's bytes, fetched a block at a time with ranged GETs; the last `keep` blocks are kept."""

    def __init__(self, key: str, block_size: int, keep: int = 8) -> None:
        self.key, self.block_size, self.keep = key, block_size, keep
        self._kept: OrderedDict[int, bytes] = OrderedDict()
        self.size = -1  # learnt from the first block's Content-Range
        self.block(0)

    def block(self, number: int) -> bytes:
        """The `number`th block (shorter at the end, empty past it)."""
        if number in self._kept:
            self._kept.move_to_end(number)
            return self._kept[number]
        start = number * self.block_size
        if self.size >= 0 and start >= self.size:
            return b""
        try:
            response = aws.client("s3").get_object(Bucket=_bucket(), Key=self.key,
                                                   Range=f"bytes={start}-{start + self.block_size - 1}")
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidRange":  # an empty object has no byte 0
                raise
            self.size = 0
            return b""
        data: bytes = response["Body"].read()
        self.size = int(str(response.get("ContentRange", "")).rpartition("/")[2] or len(data))
        self._kept[number] = data
        if len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return data

    def seekable(self) -> io.BufferedReader:
        return io.BufferedReader(_SeekableObject(self), buffer_size=64 * 1024)


class _SeekableObject(io.RawIOBase):
    """A read-only file over `Blocks`, for readers that seek (pypdf)."""

    def __init__(self, blocks: Blocks) -> None:
        super().__init__()
        self._blocks, self._position = blocks, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._blocks.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        number, within = divmod(self._position, self._blocks.block_size)
        data = self._blocks.block(number)[within:within + len(buffer)]
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)


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
