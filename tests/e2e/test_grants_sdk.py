"""One grant per (user, path part) pair through the local stack with the `ksapi` SDK."""

from __future__ import annotations

import json
import uuid

import ksapi
import pytest
from ksapi.exceptions import ApiException

from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import _client, _knowledge

pytestmark = pytest.mark.e2e


def test_a_pair_holds_one_grant(local_stack: LocalStack) -> None:
    tenant_id = uuid.UUID(local_stack.credentials["tenant_id"])
    owner = _client(local_stack, local_stack.credentials["api_key"])
    grants = ksapi.UserPermissionsApi(owner)
    parts = _knowledge(owner, local_stack.credentials["root_path_part_id"])
    sources, outputs = parts["sources"].path_part_id, parts["outputs"].path_part_id
    user = local_stack.admin("create-user", "--tenant-id", str(tenant_id),
                             "--email", f"{uuid.uuid4().hex[:8]}@example.com", "--role", "USER")
    member = ksapi.PathPartsApi(_client(local_stack, user["api_key"]))

    def grant(path_part_id: str, capability: str) -> ksapi.PermissionResponse:
        return grants.create_user_permission(ksapi.CreatePermissionRequest(
            tenant_id=tenant_id, user_id=user["user_id"], path_part_id=path_part_id, capability=capability))

    on_sources = grant(sources, "READ_ONLY")
    with pytest.raises(ApiException) as duplicate:
        grant(sources, "READ_WRITE")
    assert duplicate.value.status == 409
    assert str(on_sources.id) in json.loads(duplicate.value.body or "{}")["detail"]

    on_outputs = grant(outputs, "READ_WRITE")
    with pytest.raises(ApiException) as moved_onto_sources:
        grants.update_user_permission(on_outputs.id, tenant_id, ksapi.UpdatePermissionRequest(path_part_id=sources))
    assert moved_onto_sources.value.status == 409
    listed = grants.list_user_permissions(tenant_id, uuid.UUID(user["user_id"]), limit=100)
    assert sorted((str(p.path_part_id), p.capability) for p in listed.items) == sorted(
        [(str(sources), "READ_ONLY"), (str(outputs), "READ_WRITE")])
    assert not member.get_path_part(sources).can_write and member.get_path_part(outputs).can_write

    grants.delete_user_permission(on_sources.id, tenant_id)
    assert grant(sources, "READ_WRITE").capability == "READ_WRITE"
    assert member.get_path_part(sources).can_write
