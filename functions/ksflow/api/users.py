"""/v1/users/me."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.responses import documented
from ksflow.errors import Unauthorized
from ksflow.identity import store
from ksflow.identity.models import Role

router = APIGatewayHttpRouter()


class UserResponse(BaseModel):
    id: UUID
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    idp_type: str = "PASSWORD"
    current_tenant_id: UUID
    current_tenant_role: Role
    default_tenant_id: UUID
    # Not in the SDK's model (which ignores it): where a client starts browsing the tenant's knowledge tree.
    root_path_part_id: UUID | None = None


@router.get("/v1/users/me", tags=["users"], summary="The calling user", responses=documented(200))
def get_me(principal: CurrentPrincipal) -> UserResponse:
    user = store.get_user(principal.tenant_id, principal.user_id)
    if user is None:
        raise Unauthorized("The user of this API key no longer exists")
    tenant = store.get_tenant(principal.tenant_id) or {}
    return UserResponse(id=principal.user_id, email=user.get("email"),
                        current_tenant_id=principal.tenant_id,
                        current_tenant_role=Role(user["role"]),
                        default_tenant_id=principal.tenant_id,
                        root_path_part_id=tenant.get("root_path_part_id"))
