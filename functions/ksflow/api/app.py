"""The resolver: routes from every URL family, FastAPI-style errors, and the OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.shared.json_encoder import Encoder
from pydantic_core import from_json

from ksflow.api import (
    analytics,
    api_keys,
    contents,
    definitions,
    ingestion,
    knowledge,
    permissions,
    public,
    run_listings,
    runs,
    uploads,
    users,
    workflows,
)
from ksflow.console import routes as console
from ksflow.errors import ApiError
from ksflow.observability import logger


def parse_json_body(body: str) -> Any:
    """Parse request bodies with pydantic's parser, as the callback's model does.

    `json.loads` raises RecursionError on deep nesting and a bare ValueError on integers
    longer than 4300 digits, which would be 500s; this parser reports those, NaN and lone
    surrogates as invalid JSON, a 422 like any other.
    """
    try:
        return from_json(body, allow_inf_nan=False)
    except ValueError as error:
        invalid = {"loc": ("body",), "msg": f"Invalid JSON: {error}", "type": "json_invalid"}
        raise RequestValidationError([invalid]) from None


def serialize_json(body: Any) -> str:
    """Compact JSON with characters as they are: escaping makes a 4-byte character 12 bytes long."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, cls=Encoder)


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body,
                             serializer=serialize_json)
# ingestion before workflows: /v1/workflows/document_versions must not be read as a workflow id; analytics
# before runs: /v1/workflow-runs/summary must not be read as a run id.
for router in (knowledge.router, ingestion.router, definitions.router, run_listings.router, analytics.router,
               runs.router, workflows.router, users.router, api_keys.router, permissions.router, public.router,
               contents.router, uploads.router, console.router):
    app.include_router(router)


def json_response(status_code: int, body: Any) -> Response:
    return Response(status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(ApiError)
def handle_api_error(error: ApiError) -> Response:
    return json_response(error.status_code, {"detail": error.detail})


@app.exception_handler(RequestValidationError)
def handle_validation_error(error: RequestValidationError) -> Response:
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", "Invalid value"), "type": e.get("type", "value_error")}
        for e in error.errors()
    ]
    return json_response(422, {"detail": detail})


@cache
def _describe_api() -> None:
    """Title and security scheme of the OpenAPI document, set when it is first asked for: importing the
    OpenAPI models would add about a tenth of a second to every cold start, and no other request needs them."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    app.configure_openapi(
        title="ksflow",
        version="1.0.0",
        description="Knowledge Stack workflow API: definitions, runs, callbacks and the knowledge base.",
        security_schemes={"bearer": HTTPBearer(description="API key, `Authorization: Bearer sk-...`")},
        security=[{"bearer": []}],
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi_document():  # no return annotation: it would enter the OpenAPI schema
    _describe_api()
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                    body=app.get_openapi_json_schema())


@app.exception_handler(UnicodeDecodeError)
def handle_undecodable_body(_: UnicodeDecodeError) -> Response:
    return json_response(422, {"detail": [{"loc": ["body"], "msg": "Body is not valid UTF-8",
                                           "type": "json_invalid"}]})


def _methods_for(path: str) -> list[str]:
    """Methods served at a path. A literal path (`/v1/workflows/document_versions`) is its own
    resource, even where a parameterized route (`/v1/workflows/<workflow_id>`) would match it too."""
    # Powertools answers an unknown method on a known path with 404; the route table tells 405 apart.
    for routes in (app._static_routes, app._dynamic_routes):
        methods = sorted({route.method for route in routes if route.rule.match(path)})
        if methods:
            return methods
    return []


def literal_route_methods(method: str, path: str) -> list[str]:
    """The methods of the literal route at `path` if `method` is not among them, else nothing.

    Checked before routing: otherwise `GET /v1/documents/ingest` would reach
    `GET /v1/documents/<document_id>` instead of getting the 405 its resource deserves.
    """
    methods = sorted({route.method for route in app._static_routes if route.rule.match(path)})
    return methods if methods and method not in methods else []


@app.not_found
def route_not_found(_: Exception) -> Response:
    allowed = _methods_for(app.current_event.path)
    if allowed:
        return Response(status_code=405, content_type=content_types.APPLICATION_JSON,
                        body={"detail": "Method Not Allowed"}, headers={"Allow": ", ".join(allowed)})
    return json_response(404, {"detail": "Not Found"})


def log_unexpected(error: Exception) -> Response:
    logger.exception("Unhandled error")
    return json_response(500, {"detail": "Internal Server Error"})


app.exception_handler(Exception)(log_unexpected)
