"""Domain errors that the API turns into FastAPI-style responses."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ApiError(Exception):
    """An error with an HTTP status and a FastAPI-style `detail`."""

    status_code = 400

    def __init__(self, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class Unauthorized(ApiError):
    status_code = 401


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class Invalid(ApiError):
    """422 whose detail points at the offending field, as FastAPI's validation errors do."""

    status_code = 422

    def __init__(self, loc: list[str | int], msg: str, type_: str = "value_error") -> None:
        super().__init__([{"loc": loc, "msg": msg, "type": type_}])

    @classmethod
    def from_validation(cls, error: ValidationError, prefix: str = "body") -> Invalid:
        invalid = cls([], "")
        invalid.detail = [{"loc": [prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                          for e in error.errors(include_url=False, include_input=False)]
        return invalid


class Forbidden(ApiError):
    status_code = 403


class Unavailable(ApiError):
    """A dependency failed after the request was accepted; retrying the same request is safe."""

    status_code = 503
