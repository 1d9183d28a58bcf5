"""Lambda entry point of the HTTP API."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.api.app import app
from ksflow.observability import logger, metrics, tracer

MAX_BODY_BYTES = 1024 * 1024


def _too_large(event: dict[str, Any]) -> dict[str, Any] | None:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size <= MAX_BODY_BYTES:
        return None
    return {"statusCode": 413, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"detail": f"Request body exceeds {MAX_BODY_BYTES} bytes"})}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _too_large(event) or app.resolve(event, context)
