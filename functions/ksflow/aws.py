"""boto3 clients, created once per process (Lambda container or local stack).

Endpoints come from the standard AWS_ENDPOINT_URL variables, so the same code talks to
AWS, to moto's in-process mock, or to the local stack's moto server.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)
