"""Lambda entry point of the HTTP API."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.api import ingestion
from ksflow.api.app import app, literal_route_methods
from ksflow.observability import logger, metrics, tracer

MAX_BODY_BYTES = 1024 * 1024
# Response bodies longer than this go base64-encoded: the runtime's JSON escapes each non-ASCII
# character of a plain body into up to 12 bytes, base64 needs 4/3 of the UTF-8 bytes.
PLAIN_RESPONSE_MAX_CHARS = 256 * 1024
# RFC 2046: 1 to 70 of these characters, the last not a space (so none needs escaping in quotes).
MULTIPART_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# `; name=value` with the value a quoted string (its closing quote optional) or a token; then
# anything up to the next `;`, so every character is read once and junk is skipped.
_PARAMETER = re.compile(r'\s*;\s*(?:([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^\s;]*))?[^;]*')


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


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    """Media type and parameters, read as RFC 9110 says: names in any case, values quoted or not.

    In one linear pass: the standard library's header parsers recurse on nested comments (a
    RecursionError, so a 500) and take seconds on some long headers.
    """
    media_type, separator, parameters = value.partition(";")
    found: dict[str, str] = {}
    for name, raw in _PARAMETER.findall(separator + parameters):
        if name:
            found.setdefault(name.lower(), _unquoted(raw))
    return media_type.strip().lower(), found


def _screened(event: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to a request the API never routes: a method a literal path does not serve, a body
    too large or not of the media type the route takes.

    Other requests go on with their Content-Type in the one spelling Powertools reads (it matches
    case-sensitively and fails on a missing boundary), or none if they have no body.
    """
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "")
    allowed = literal_route_methods(method, event.get("rawPath") or "")
    if allowed:
        return _error(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
    rule = _rule(event)
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size > rule.max_bytes:
        return _error(413, f"Request body exceeds {rule.max_bytes} bytes{rule.too_large}")
    headers = event.get("headers") or {}
    media_type, parameters = _content_type(headers.pop("content-type", ""))
    if not body or not media_type:
        return None
    if media_type != rule.media_type:
        return _error(415, f"Request bodies here must be {rule.media_type}")
    if rule is JSON_BODY:
        headers["content-type"] = rule.media_type
        return None
    boundary = parameters.get("boundary", "")
    if not MULTIPART_BOUNDARY.fullmatch(boundary):
        return _error(415, "multipart/form-data needs a boundary parameter of 1 to 70 characters (RFC 2046)")
    headers["content-type"] = f'{rule.media_type}; boundary="{boundary}"'
    return None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = _screened(event) or app.resolve(event, context)
    if result.get("statusCode") in (204, 304):
        result["body"] = ""  # Powertools renders `None` as "null"; a 204 or 304 carries no body at all
    return _within_payload_limit(result)


def _within_payload_limit(result: dict[str, Any]) -> dict[str, Any]:
    """Keep large responses compact for Lambda's 6 MB limit; API Gateway decodes them for the client."""
    body = result.get("body") or ""
    if result.get("isBase64Encoded") or len(body) <= PLAIN_RESPONSE_MAX_CHARS:
        return result
    return {**result, "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}
