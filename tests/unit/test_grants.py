"""One grant per (user, path part) pair, and the strongest grant along a part's lineage counts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from ksapi.models import PaginatedResponsePermissionResponse, PermissionResponse

from ksflow.deletion import cascade
from ksflow.errors import Conflict
from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser
from ksflow.knowledge import permissions
from ksflow.knowledge import store as knowledge_store
from ksflow.knowledge.models import PartType
from ksflow.knowledge.store import Capability
from tests.conftest import Response, call_api
from tests.unit.test_api_knowledge import create_folder


def _grant(tenant: CreatedTenant, user_id: str, path_part_id: str, capability: str) -> Response:
    return call_api("POST", "/v1/user-permissions", {"tenant_id": tenant.tenant_id, "user_id": user_id,
                                                     "path_part_id": path_part_id, "capability": capability},
                    tenant.api_key)


def _granted(tenant: CreatedTenant, user_id: str, path_part_id: str, capability: str) -> PermissionResponse:
    response = _grant(tenant, user_id, path_part_id, capability)
    assert response.status == 201, response.body
    permission = PermissionResponse.from_dict(response.body)
    assert permission is not None
    return permission


def _listed(tenant: CreatedTenant, user_id: str) -> list[tuple[str, str]]:
    response = call_api("GET", f"/v1/user-permissions?tenant_id={tenant.tenant_id}&user_id={user_id}&limit=100",
                        api_key=tenant.api_key)
    page = PaginatedResponsePermissionResponse.from_dict(response.body)
    assert page is not None and page.total == len(page.items)
    return sorted((str(p.path_part_id), p.capability) for p in page.items)


def _access(member: CreatedUser, part: dict[str, Any]) -> tuple[bool, bool] | None:
    """(can_read, can_write) as the member sees the part, or None when it cannot see it."""
    response = call_api("GET", f"/v1/path-parts/{part['path_part_id']}", api_key=member.api_key)
    return (response.body["can_read"], response.body["can_write"]) if response.status == 200 else None


def test_a_second_grant_on_a_pair_is_409_naming_the_first(tenant: CreatedTenant, member: CreatedUser) -> None:
    folder = create_folder(tenant.root_path_part_id, "Shared", tenant.api_key)
    first = _granted(tenant, member.user_id, folder["path_part_id"], "READ_ONLY")
    for capability in ("READ_WRITE", "READ_ONLY"):
        again = _grant(tenant, member.user_id, folder["path_part_id"], capability)
        assert again.status == 409, again.body
        assert "already has a permission on this path part" in again.body["detail"]
        assert str(first.id) in again.body["detail"]
    assert _listed(tenant, member.user_id) == [(folder["path_part_id"], "READ_ONLY")]
    assert _access(member, folder) == (True, False)


def test_concurrent_grants_on_one_pair_create_exactly_one(tenant: CreatedTenant, member: CreatedUser) -> None:
    """Each thread plays one API Lambda; only the grant's conditional write keeps them apart."""
    folder = create_folder(tenant.root_path_part_id, "Shared", tenant.api_key)
    owner = identity.authenticate(tenant.api_key)
    assert owner is not None
    created: list[permissions.Permission] = []
    refused: list[Conflict] = []
    barrier = threading.Barrier(8)

    def grant(capability: Capability) -> None:
        barrier.wait()
        try:
            created.append(permissions.create(owner, member.user_id, folder["path_part_id"], capability))
        except Conflict as conflict:
            refused.append(conflict)

    threads = [threading.Thread(target=grant, args=(list(Capability)[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(created), len(refused)) == (1, 7)
    winner = created[0]
    assert _listed(tenant, member.user_id) == [(folder["path_part_id"], winner.capability.value)]
    assert _access(member, folder) == (True, winner.capability == Capability.READ_WRITE)


def test_a_patch_that_would_duplicate_a_pair_is_409(tenant: CreatedTenant, member: CreatedUser) -> None:
    first = create_folder(tenant.root_path_part_id, "First", tenant.api_key)
    second = create_folder(tenant.root_path_part_id, "Second", tenant.api_key)
    third = create_folder(tenant.root_path_part_id, "Third", tenant.api_key)
    on_first = _granted(tenant, member.user_id, first["path_part_id"], "READ_ONLY")
    on_second = _granted(tenant, member.user_id, second["path_part_id"], "READ_WRITE")

    moved_onto_first = call_api("PATCH", f"/v1/user-permissions/{on_second.id}",
                                {"path_part_id": first["path_part_id"]}, tenant.api_key)
    assert moved_onto_first.status == 409, moved_onto_first.body
    assert str(on_first.id) in moved_onto_first.body["detail"]
    assert _listed(tenant, member.user_id) == sorted([(first["path_part_id"], "READ_ONLY"),
                                                      (second["path_part_id"], "READ_WRITE")])
    assert (_access(member, first), _access(member, second)) == ((True, False), (True, True))

    # Onto a free pair it moves, and the pair it left is free for a new grant.
    moved = call_api("PATCH", f"/v1/user-permissions/{on_second.id}",
                     {"path_part_id": third["path_part_id"], "capability": "READ_ONLY"}, tenant.api_key)
    assert moved.status == 200, moved.body
    assert (moved.body["id"], moved.body["materialized_path"]) == (str(on_second.id), "/Third")
    assert _access(member, second) is None and _access(member, third) == (True, False)
    _granted(tenant, member.user_id, second["path_part_id"], "READ_WRITE")
    assert _grant(tenant, member.user_id, third["path_part_id"], "READ_WRITE").status == 409
    # Patching a grant onto its own part is no duplicate.
    same = call_api("PATCH", f"/v1/user-permissions/{on_first.id}",
                    {"path_part_id": first["path_part_id"], "capability": "READ_WRITE"}, tenant.api_key)
    assert same.status == 200 and same.body["capability"] == "READ_WRITE"
    assert _listed(tenant, member.user_id) == sorted([(first["path_part_id"], "READ_WRITE"),
                                                      (second["path_part_id"], "READ_WRITE"),
                                                      (third["path_part_id"], "READ_ONLY")])


def test_delete_frees_the_pair(tenant: CreatedTenant, member: CreatedUser) -> None:
    folder = create_folder(tenant.root_path_part_id, "Shared", tenant.api_key)
    revoked = _granted(tenant, member.user_id, folder["path_part_id"], "READ_ONLY")
    assert call_api("DELETE", f"/v1/user-permissions/{revoked.id}", api_key=tenant.api_key).status == 204
    assert _access(member, folder) is None
    regranted = _granted(tenant, member.user_id, folder["path_part_id"], "READ_WRITE")
    assert regranted.id != revoked.id
    # The revoked id names nothing any more, even though its pair has a grant again.
    for method, body in (("DELETE", None), ("PATCH", {"capability": "READ_ONLY"})):
        stale = call_api(method, f"/v1/user-permissions/{revoked.id}", body, tenant.api_key)
        assert stale.status == 404, (method, stale.body)
    assert _listed(tenant, member.user_id) == [(folder["path_part_id"], "READ_WRITE")]
    assert _access(member, folder) == (True, True)


def test_the_strongest_grant_on_a_part_or_its_ancestors_counts(
        tenant: CreatedTenant, member: CreatedUser, grant: Callable[[str, str, str], None]) -> None:
    parent = create_folder(tenant.root_path_part_id, "Parent", tenant.api_key)
    child = create_folder(parent["path_part_id"], "Child", tenant.api_key)
    grandchild = create_folder(child["path_part_id"], "Grandchild", tenant.api_key)

    # READ_WRITE above, READ_ONLY below: the narrower grant takes nothing away.
    grant(member.user_id, parent["path_part_id"], "READ_WRITE")
    grant(member.user_id, child["path_part_id"], "READ_ONLY")
    assert [_access(member, p) for p in (parent, child, grandchild)] == [(True, True)] * 3
    assert create_folder(child["path_part_id"], "Made by member", member.api_key)["materialized_path"] \
        == "/Parent/Child/Made by member"

    # READ_ONLY above, READ_WRITE below: writing only where the stronger grant reaches.
    owner = identity.authenticate(tenant.api_key)
    assert owner is not None
    for granted in permissions.list_for_user(owner, member.user_id):
        flipped = "READ_ONLY" if granted.capability == Capability.READ_WRITE else "READ_WRITE"
        patched = call_api("PATCH", f"/v1/user-permissions/{granted.id}", {"capability": flipped}, tenant.api_key)
        assert patched.status == 200, patched.body
    assert [_access(member, p) for p in (parent, child, grandchild)] == [(True, False), (True, True), (True, True)]
    denied = call_api("POST", "/v1/folders", {"name": "nope", "parent_path_part_id": parent["path_part_id"]},
                      member.api_key)
    assert denied.status == 403, denied.body
    assert create_folder(grandchild["path_part_id"], "deep", member.api_key)["materialized_path"] \
        == "/Parent/Child/Grandchild/deep"


def test_grants_on_a_folder_being_deleted_are_404_and_none_survives(
        tenant: CreatedTenant, member: CreatedUser, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grant written while a delete walks the subtree would outlive the part it names."""
    doomed = create_folder(tenant.root_path_part_id, "Doomed", tenant.api_key)
    inner = create_folder(doomed["path_part_id"], "Inner", tenant.api_key)
    elsewhere = create_folder(tenant.root_path_part_id, "Elsewhere", tenant.api_key)
    moved = _granted(tenant, member.user_id, elsewhere["path_part_id"], "READ_ONLY")
    answers: list[Response] = []
    real_delete_grants = permissions.delete_for_path_parts

    def while_fenced(tenant_id: str, path_part_ids: set[str]) -> None:
        if not answers:
            answers.append(_grant(tenant, member.user_id, inner["path_part_id"], "READ_WRITE"))
            answers.append(call_api("PATCH", f"/v1/user-permissions/{moved.id}",
                                    {"path_part_id": doomed["path_part_id"]}, tenant.api_key))
        real_delete_grants(tenant_id, path_part_ids)

    monkeypatch.setattr(permissions, "delete_for_path_parts", while_fenced)
    part = knowledge_store.get_by_object_id(tenant.tenant_id, doomed["id"], PartType.FOLDER)
    assert part is not None
    cascade.delete(part)
    assert [a.status for a in answers] == [404, 404], [a.body for a in answers]
    assert _listed(tenant, member.user_id) == [(elsewhere["path_part_id"], "READ_ONLY")]
