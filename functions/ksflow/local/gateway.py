"""An HTTP server that does what API Gateway's HTTP API does for the API Lambda.

Each request becomes a payload-format-2.0 event handed to the real handler; its answer
becomes the HTTP response. moto's API Gateway cannot front Lambda, hence this shim.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ksflow.local.lambda_runtime import LocalContext
from ksflow.observability import logger

# API Gateway's own payload limit, and Lambda's for a synchronous invocation's event (the body is
# base64-encoded in it); the handler enforces the API's smaller ones.
GATEWAY_MAX_BODY = 10 * 1024 * 1024
LAMBDA_MAX_EVENT = 6 * 1024 * 1024
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def to_event(method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    url = urlsplit(target)
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    lowered = {name.lower(): value for name, value in headers.items()}
    is_text = any(lowered.get("content-type", "").startswith(t) for t in TEXT_TYPES)
    try:
        text_body = body.decode() if is_text else None
    except UnicodeDecodeError:
        text_body = None
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": url.path, "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": lowered.get("host", "localhost"),
            "http": {"method": method, "path": url.path, "protocol": "HTTP/1.1", "sourceIp": client_ip,
                     "userAgent": lowered.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": text_body is None and bool(body),
    }
    if "cookie" in lowered:
        event["cookies"] = [c.strip() for c in lowered["cookie"].split(";") if c.strip()]
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if body:
        event["body"] = text_body if text_body is not None else base64.b64encode(body).decode()
    return event


def make_server(host: str, port: int, handler: Handler) -> ThreadingHTTPServer:
    class GatewayRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """The server's own access log is replaced by one structured line per request (`_handle`)."""

        def _respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            """Answer the request, then log it as API Gateway's access log would: no query, no headers."""
            started = time.monotonic()
            status = self._forward()
            logger.info("API request", extra={"method": self.command, "path": urlsplit(self.path).path,
                                              "status": status,
                                              "duration_ms": round((time.monotonic() - started) * 1000)})

        def _forward(self) -> int:
            """Hand the request to the handler as its event and send its answer; the status sent."""
            length = int(self.headers.get("Content-Length") or 0)
            if length > GATEWAY_MAX_BODY:
                self.close_connection = True
                return self._too_large()
            body = self.rfile.read(length) if length else b""
            event = to_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
            if len(json.dumps(event)) > LAMBDA_MAX_EVENT:
                # In AWS such a request never reaches the function either.
                return self._too_large()
            context = LocalContext(function_name="ksflow-Api", timeout_seconds=30)
            result = handler(event, context)
            payload = result.get("body") or ""
            raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            headers = dict(result.get("headers") or {})
            for name, values in (result.get("multiValueHeaders") or {}).items():
                headers[name] = ", ".join(values)
            status = int(result.get("statusCode", 200))
            self._respond(status, headers, raw)
            return status

        def _too_large(self) -> int:
            self._respond(413, {"Content-Type": "application/json"},
                          json.dumps({"message": "Request Entity Too Large"}).encode())
            return 413

        def __getattr__(self, name: str) -> Any:
            # API Gateway's $default route hands every method to the Lambda, which decides.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    server = ThreadingHTTPServer((host, port), GatewayRequestHandler)
    server.daemon_threads = True
    return server
