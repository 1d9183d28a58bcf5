"""/v1/api-keys: the calling user's API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.responses import documented
from ksflow.errors import NotFound
from ksflow.identity import store

router = APIGatewayHttpRouter()
TAGS = ["api-keys"]


class CreateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyResponse(BaseModel):
    id: UUID
    name: str
    key_suffix: str
    created_at: datetime


class CreateApiKeyResponse(ApiKeyResponse):
    key: str = Field(description="The key itself: shown only in this response")


def _response(key: store.ApiKey) -> ApiKeyResponse:
    return ApiKeyResponse.model_validate(key.model_dump(exclude={"key_hash"}))


@router.post("/v1/api-keys", status_code=201, tags=TAGS, summary="Create an API key", responses=documented(201))
def create_api_key(request: CreateApiKeyRequest, principal: CurrentPrincipal) -> CreateApiKeyResponse:
    key, plaintext = store.create_api_key(principal, request.name)
    return CreateApiKeyResponse.model_validate({**key.model_dump(exclude={"key_hash"}), "key": plaintext})


@router.get("/v1/api-keys", tags=TAGS, summary="List your API keys", responses=documented(200))
def list_api_keys(principal: CurrentPrincipal) -> list[ApiKeyResponse]:
    return [_response(key) for key in store.list_api_keys(principal)]


@router.get("/v1/api-keys/<api_key_id>", tags=TAGS, summary="Get one of your API keys",
            responses=documented(200, 404))
def get_api_key(api_key_id: UUID, principal: CurrentPrincipal) -> ApiKeyResponse:
    key = store.get_api_key(principal, str(api_key_id))
    if key is None:
        raise NotFound("API key not found")
    return _response(key)


@router.delete("/v1/api-keys/<api_key_id>", status_code=204, tags=TAGS, summary="Revoke one of your API keys",
               responses=documented(204, 404))
def delete_api_key(api_key_id: UUID, principal: CurrentPrincipal) -> None:
    key = store.get_api_key(principal, str(api_key_id))
    if key is None:
        raise NotFound("API key not found")
    store.revoke_api_key(principal, key)
