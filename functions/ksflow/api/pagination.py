"""limit/offset pagination shared by the list endpoints."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="Number of items per page")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Number of items to skip")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
