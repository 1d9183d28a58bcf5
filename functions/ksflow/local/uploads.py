"""The local stack's stand-in for the bucket lifecycle rules that remove unfinished direct uploads.

moto runs no lifecycle rules, so this thread expires uploads whose `expires_at` passed: their parts
and bytes go, and completing them answers 410, as in AWS (where the record's expiry does the same
on the next completion, and the lifecycle removes the bytes of uploads nobody asks about again).
"""

from __future__ import annotations

import threading
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from ksflow import aws
from ksflow.config import settings
from ksflow.local import lambda_runtime
from ksflow.observability import logger
from ksflow.uploads import service

SWEEP_SECONDS = 60.0


def upload_records() -> list[dict[str, Any]]:
    """Every tenant's upload records, read from the emulator's memory rather than by a Scan.

    moto answers a Scan by sorting every item of the table while every other DynamoDB call waits:
    once a large file's chunks were stored, one sweep outlasted the SDK's 60-second read timeout of
    the ingestion writing them. Picking the records out of moto's partitions takes milliseconds.
    """
    region = aws.client("dynamodb").meta.region_name
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(settings().table_name)
    with lambda_runtime.dynamodb_lock:
        found = [item.to_json()["Attributes"] for hash_key, partition in table.items.items()
                 if str(hash_key.value).startswith("TENANT#")
                 for range_key, item in partition.items() if str(range_key.value).startswith("UPLOAD#")]
    deserializer = TypeDeserializer()
    return [{name: deserializer.deserialize(value) for name, value in item.items()} for item in found]


def start(stop: threading.Event, interval: float = SWEEP_SECONDS) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                swept = service.sweep_expired(upload_records())
            except Exception:
                logger.exception("Sweeping expired uploads failed")
                continue
            if swept:
                logger.info("Expired uploads removed", extra={"uploads": swept})

    thread = threading.Thread(target=loop, name="local-upload-sweeper", daemon=True)
    thread.start()
    return thread
