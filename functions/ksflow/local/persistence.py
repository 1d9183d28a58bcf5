"""`ksflow local --data-dir`: the local stack's tables, documents and keys kept on disk.

moto keeps everything in memory. The stack's data is written to the directory while it
runs (every few seconds and at shutdown) and restored at the next start: table items and
documents through the public DynamoDB and S3 APIs, so a restore is an ordinary write.
KMS is the exception. moto generates fresh key material, with fresh key ids, on every
start, and a ciphertext names its key, so the keys themselves (id, material, aliases)
are saved and put back into moto's KMS backend before anything is provisioned. Only
this local emulator is touched; the deployed code paths are the same as in AWS.

Layout: `kms.json`, `table.json` (items in DynamoDB's typed JSON), `documents/index.json`
(key, content type, metadata, ETag) with one file per object, `demo-tenant.json` (ids
only, never a key). Files are replaced atomically, so a crash leaves the previous save.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from ksflow.observability import logger

SAVE_INTERVAL_SECONDS = 2.0


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _write_json(path: Path, value: Any) -> None:
    _write_atomically(path, json.dumps(value, indent=1, sort_keys=True).encode())


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _convert_binary(value: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """A typed DynamoDB attribute value with its binary parts converted (bytes to text and back)."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": convert(inner)}
    if kind == "BS":
        return {"BS": [convert(part) for part in inner]}
    if kind == "M":
        return {"M": {name: _convert_binary(part, convert) for name, part in inner.items()}}
    if kind == "L":
        return {"L": [_convert_binary(part, convert) for part in inner]}
    return value


def _to_text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kms_backend() -> Any:
    """moto's KMS backend of this process (the moto server runs in-process)."""
    from moto.kms.models import kms_backends

    account = boto3.client("sts").get_caller_identity()["Account"]
    return kms_backends[account][os.environ["AWS_DEFAULT_REGION"]]


class DataDir:
    """One data directory; `save` may run from a timer thread and at shutdown alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.documents = path / "documents"
        self._lock = threading.Lock()
        self._saved_table = b""

    def restore_keys(self) -> None:
        """Put the saved KMS keys back under their ids, so earlier ciphertexts decrypt; before provisioning."""
        backend = _kms_backend()
        for saved in _read_json(self.path / "kms.json", []):
            key = backend.create_key(policy=None, key_usage="ENCRYPT_DECRYPT", key_spec="SYMMETRIC_DEFAULT",
                                     description=saved["description"], tags=None)
            del backend.keys[key.id]
            key.arn = key.arn.removesuffix(key.id) + saved["id"]
            key.id, key.key_material = saved["id"], base64.b64decode(saved["material"])
            backend.keys[key.id] = key
            for alias in saved["aliases"]:
                backend.create_alias(key.id, alias)

    def restore(self, table_name: str, bucket: str) -> None:
        """Write the saved items and documents into the freshly provisioned table and bucket."""
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        items = [{name: _convert_binary(value, base64.b64decode) for name, value in item.items()}
                 for item in _read_json(self.path / "table.json", [])]
        for start in range(0, len(items), 25):
            request: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
            while request:
                request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        for key, saved in _read_json(self.documents / "index.json", {}).items():
            s3.put_object(Bucket=bucket, Key=key, Body=(self.documents / saved["file"]).read_bytes(),
                          ContentType=saved["content_type"], Metadata=saved["metadata"])

    def save(self, table_name: str, bucket: str) -> None:
        with self._lock:
            self.documents.mkdir(parents=True, exist_ok=True)
            self._save_keys()
            self._save_table(table_name)
            self._save_documents(bucket)

    def _save_keys(self) -> None:
        keys = [{"id": key.id, "description": key.description, "material": _to_text(key.key_material),
                 "aliases": sorted(key.aliases)} for key in _kms_backend().keys.values()]
        _write_json(self.path / "kms.json", keys)

    def _save_table(self, table_name: str) -> None:
        """The whole table, rewritten only when it changed."""
        pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table_name)
        items = [{name: _convert_binary(value, _to_text) for name, value in item.items()}
                 for page in pages for item in page["Items"]]
        data = json.dumps(sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"])), indent=1).encode()
        if data != self._saved_table:
            _write_atomically(self.path / "table.json", data)
            self._saved_table = data

    def _save_documents(self, bucket: str) -> None:
        """The bucket's current objects; only those whose ETag changed are downloaded again."""
        s3 = boto3.client("s3")
        index_path = self.documents / "index.json"
        saved: dict[str, dict[str, Any]] = _read_json(index_path, {})
        current: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for listed in page.get("Contents", []):
                key = listed["Key"]
                if saved.get(key, {}).get("etag") == listed["ETag"]:
                    current[key] = saved[key]
                    continue
                stored = s3.get_object(Bucket=bucket, Key=key)
                file_name = hashlib.sha256(key.encode()).hexdigest()
                _write_atomically(self.documents / file_name, stored["Body"].read())
                current[key] = {"file": file_name, "etag": listed["ETag"], "metadata": stored.get("Metadata", {}),
                                "content_type": stored.get("ContentType", "binary/octet-stream")}
        if current != saved:
            _write_json(index_path, current)
        for gone in saved.keys() - current.keys():
            (self.documents / saved[gone]["file"]).unlink(missing_ok=True)

    def demo_tenant(self) -> dict[str, str] | None:
        """The ids of the demo tenant made at the first start (its keys live in the table, hashed)."""
        found: dict[str, str] | None = _read_json(self.path / "demo-tenant.json", None)
        return found

    def remember_demo_tenant(self, ids: dict[str, str]) -> None:
        _write_json(self.path / "demo-tenant.json", ids)

    def keep_saving(self, table_name: str, bucket: str, stop: threading.Event,
                    interval: float = SAVE_INTERVAL_SECONDS) -> threading.Thread:
        """Save every `interval` seconds until `stop`, so a crash loses at most that much."""
        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.save(table_name, bucket)
                except Exception:
                    logger.exception("Saving the local stack's data failed")

        thread = threading.Thread(target=loop, name="local-persistence", daemon=True)
        thread.start()
        return thread
