"""Who is calling: the principal every request acts as."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    USER = "USER"


class Principal(BaseModel, frozen=True):
    tenant_id: str
    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """OWNER and ADMIN read and write everything in their tenant."""
        return self.role in (Role.OWNER, Role.ADMIN)


class CreatedTenant(BaseModel):
    tenant_id: str
    root_path_part_id: str
    user_id: str
    api_key: str


class CreatedUser(BaseModel):
    user_id: str
    api_key: str
