"""The unauthenticated pages: interactive docs served without a CDN, the root redirect, the health check."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest

from ksflow.local import gateway
from ksflow.local.lambda_runtime import LocalContext
from tests.conftest import api_handler


def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A GET without credentials, through the API handler; the body as the client receives it."""
    event = gateway.to_event("GET", path, headers or {}, b"", "127.0.0.1")
    result: dict[str, Any] = api_handler(event, LocalContext(function_name="ksflow-Api", timeout_seconds=30))
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return result["statusCode"], dict(result.get("headers") or {}), raw


def test_root_redirects_to_the_docs(aws_env: dict[str, str]) -> None:
    status, headers, _ = get("/")
    assert status == 307
    assert headers["Location"] == "/docs"


def test_docs_page_loads_the_openapi_document_and_only_local_assets(aws_env: dict[str, str]) -> None:
    status, headers, body = get("/docs")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'url: "/openapi.json"' in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/docs/") for source in sources), sources
    for source in sources:
        asset_status, asset_headers, asset = get(source)
        assert asset_status == 200, source
        assert asset_headers["Content-Type"].startswith(("text/javascript", "text/css"))
        assert len(asset) > 10_000
    assert get("/openapi.json")[0] == 200


def test_docs_assets_are_compressed_for_clients_that_accept_gzip(aws_env: dict[str, str]) -> None:
    _, plain_headers, plain = get("/docs/swagger-ui-bundle.min.js")
    status, headers, compressed = get("/docs/swagger-ui-bundle.min.js", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain_headers
    assert gzip.decompress(compressed) == plain
    assert b"SwaggerUIBundle" in plain


@pytest.mark.parametrize("path", ["/docs/other.js", "/docs/..%2Fapi_gateway.py", "/docs/html.py"])
def test_only_the_swagger_ui_assets_are_served(aws_env: dict[str, str], path: str) -> None:
    status, _, body = get(path)
    assert status == 404
    assert json.loads(body) == {"detail": "Not Found"}


def test_health_needs_no_credentials(aws_env: dict[str, str]) -> None:
    status, headers, body = get("/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok"}
