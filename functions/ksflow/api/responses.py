"""OpenAPI descriptions of the error responses routes can give, so the document lists them all."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel


class ErrorResponse(BaseModel):
    """FastAPI-style error body."""

    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationErrorItem]


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or revoked credentials",
    403: "Not allowed for this user",
    404: "Not found (or not visible to this tenant or user)",
    409: "Conflicts with the current state",
    410: "Gone: expired",
    413: "Request body too large",
    415: "Request body is not of the media type the route takes",
    422: "Validation error",
}


def documented(success: int, *errors: int) -> dict[int, OpenAPIResponse]:
    """The route's success response (its return annotation's schema) and the errors it can give.

    Every authenticated route can answer 401; every route can answer 413, 415 and 422.
    """
    responses: dict[int, OpenAPIResponse] = {
        success: {"description": "Successful Response", **({"content": {}} if success == 204 else {})},
    }
    for code in sorted({401, 413, 415, 422, *errors}):
        model: Any = ValidationErrorResponse if code == 422 else ErrorResponse
        responses[code] = {"description": _DESCRIPTIONS[code], "content": {"application/json": {"model": model}}}
    return responses
