"""/v1/user-permissions: grants of READ_ONLY or READ_WRITE on a path part's subtree."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.errors import NotFound
from ksflow.identity.models import Principal
from ksflow.knowledge import permissions
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.store import Capability

router = APIGatewayHttpRouter()
TAGS = ["user-permissions"]


class CreatePermissionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: UUID
    user_id: UUID
    path_part_id: UUID
    capability: Capability


class UpdatePermissionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path_part_id: UUID | None = None
    capability: Capability | None = None


class PermissionResponse(BaseModel):
    id: UUID
    tenant_id: UUID
    user_id: UUID
    path_part_id: UUID
    materialized_path: str
    capability: Capability
    created_at: datetime
    updated_at: datetime


def _same_tenant(principal: Principal, tenant_id: UUID) -> None:
    if str(tenant_id) != principal.tenant_id:
        raise NotFound("Tenant not found")


def _responses(principal: Principal, granted: list[permissions.Permission]) -> list[PermissionResponse]:
    parts = knowledge.get_path_parts(principal.tenant_id, [p.path_part_id for p in granted])
    return [
        PermissionResponse.model_validate({
            **p.model_dump(),
            "materialized_path": parts[p.path_part_id].materialized_path if p.path_part_id in parts else "",
        })
        for p in granted
    ]


@router.post("/v1/user-permissions", status_code=201, tags=TAGS, summary="Grant a permission",
             responses=documented(201, 403, 404, 409))
def create_permission(request: CreatePermissionRequest, principal: CurrentPrincipal) -> PermissionResponse:
    _same_tenant(principal, request.tenant_id)
    created = permissions.create(principal, str(request.user_id), str(request.path_part_id), request.capability)
    return _responses(principal, [created])[0]


@router.get("/v1/user-permissions", tags=TAGS, summary="List a user's permissions", responses=documented(200, 404))
def list_permissions(tenant_id: UUID, user_id: UUID, principal: CurrentPrincipal,
                     limit: Limit = 20, offset: Offset = 0) -> Page[PermissionResponse]:
    _same_tenant(principal, tenant_id)
    granted = permissions.list_for_user(principal, str(user_id))
    return Page[PermissionResponse](items=_responses(principal, granted[offset:offset + limit]), total=len(granted),
                                    limit=limit, offset=offset)


@router.patch("/v1/user-permissions/<permission_id>", tags=TAGS, summary="Change a permission",
              responses=documented(200, 403, 404, 409))
def update_permission(permission_id: UUID, request: UpdatePermissionRequest, principal: CurrentPrincipal,
                      tenant_id: UUID | None = None) -> PermissionResponse:
    if tenant_id is not None:
        _same_tenant(principal, tenant_id)
    path_part_id = str(request.path_part_id) if request.path_part_id else None
    changed = permissions.update(principal, str(permission_id), path_part_id, request.capability)
    return _responses(principal, [changed])[0]


@router.delete("/v1/user-permissions/<permission_id>", status_code=204, tags=TAGS, summary="Revoke a permission",
               responses=documented(204, 403, 404, 409))
def delete_permission(permission_id: UUID, principal: CurrentPrincipal, tenant_id: UUID | None = None) -> None:
    if tenant_id is not None:
        _same_tenant(principal, tenant_id)
    permissions.delete(principal, str(permission_id))
