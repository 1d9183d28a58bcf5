"""The unauthenticated pages next to `/openapi.json`: interactive docs, the root redirect, a health check.

Swagger UI's script and stylesheet are the copies Powertools ships in its own package (so they are in every
Lambda bundle); serving them from here keeps the docs working offline and without a third-party CDN.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import aws_lambda_powertools.event_handler
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.errors import NotFound

router = APIGatewayHttpRouter()

DOCS_PATH = "/docs"
SWAGGER_UI_DIR = Path(aws_lambda_powertools.event_handler.__file__).parent / "openapi" / "swagger_ui"
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
# The assets change only with the Powertools release a deploy ships.
ASSET_CACHE_CONTROL = "public, max-age=86400"

DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ksflow API</title>
  <link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.min.js"></script>
  <script>
    SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true}});
  </script>
</body>
</html>
"""


@router.get("/", include_in_schema=False)
def root():  # no return annotation: it would enter the OpenAPI schema
    return Response(status_code=307, headers={"Location": DOCS_PATH})


@router.get(DOCS_PATH, include_in_schema=False)
def docs_page():
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=DOCS_PAGE)


@cache
def _asset(name: str) -> bytes:
    return (SWAGGER_UI_DIR / name).read_bytes()


@router.get(f"{DOCS_PATH}/<asset_name>", include_in_schema=False, compress=True)
def docs_asset(asset_name: str):
    if asset_name not in SWAGGER_UI_ASSETS:
        raise NotFound("Not Found")
    return Response(status_code=200, content_type=SWAGGER_UI_ASSETS[asset_name], body=_asset(asset_name),
                    headers={"Cache-Control": ASSET_CACHE_CONTROL})


@router.get("/health", include_in_schema=False)
def health():
    """Liveness only: it touches no AWS service, so a load balancer's polling costs nothing."""
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body={"status": "ok"})
