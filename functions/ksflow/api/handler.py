"""Lambda entry point of the HTTP API."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.api.app import app
from ksflow.observability import logger, metrics, tracer

MAX_BODY_BYTES = 1024 * 1024


def _error(status: int, detail: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"detail": detail})}


def _rejected(event: dict[str, Any]) -> dict[str, Any] | None:
    """Bodies the API never reads: too large, or not JSON (every endpoint here takes JSON)."""
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size > MAX_BODY_BYTES:
        return _error(413, f"Request body exceeds {MAX_BODY_BYTES} bytes")
    content_type = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";")[0].strip().lower()
    if body and media_type not in ("", "application/json"):
        return _error(415, "Request bodies must be application/json")
    return None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _rejected(event) or app.resolve(event, context)
