"""Lambda entry point of the HTTP API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.api import ingestion
from ksflow.api.app import app, literal_route_methods
from ksflow.observability import logger, metrics, tracer

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BodyRule:
    """The one media type a route reads its body as, and the largest body it takes."""

    media_type: str
    max_bytes: int
    too_large: str = ""


JSON_BODY = BodyRule("application/json", MAX_BODY_BYTES)
UPLOAD_BODY = BodyRule("multipart/form-data", ingestion.MAX_UPLOAD_BYTES,
                       "; larger files cannot be uploaded through the API")


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **(headers or {})},
            "body": json.dumps({"detail": detail})}


def _rule(event: dict[str, Any]) -> BodyRule:
    """By path alone, so another method on an upload path reaches the router (and its 405)."""
    return UPLOAD_BODY if ingestion.UPLOAD_PATH.match(event.get("rawPath") or "") else JSON_BODY


def _rejected(event: dict[str, Any]) -> dict[str, Any] | None:
    """Requests the API never routes: a method a literal path does not serve, a body too large or
    not of the media type the route takes."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "")
    allowed = literal_route_methods(method, event.get("rawPath") or "")
    if allowed:
        return _error(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
    rule = _rule(event)
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size > rule.max_bytes:
        return _error(413, f"Request body exceeds {rule.max_bytes} bytes{rule.too_large}")
    content_type = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";")[0].strip().lower()
    if body and media_type not in ("", rule.media_type):
        return _error(415, f"Request bodies here must be {rule.media_type}")
    if rule is UPLOAD_BODY and media_type == "multipart/form-data" and "boundary=" not in content_type:
        return _error(415, "multipart/form-data needs its boundary parameter")
    return None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = _rejected(event) or app.resolve(event, context)
    if result.get("statusCode") == 204:
        result["body"] = ""  # Powertools renders `None` as "null"; a 204 carries no body at all
    return result
