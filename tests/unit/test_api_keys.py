"""/v1/api-keys: a user's own keys, shown once, revocable."""

from __future__ import annotations

from ksapi.models import ApiKeyResponse, CreateApiKeyResponse

from ksflow.identity.models import CreatedTenant, CreatedUser
from tests.conftest import call_api
from tests.unit.conftest import table_dump


def test_create_list_get_and_revoke(tenant: CreatedTenant, member: CreatedUser) -> None:
    created = call_api("POST", "/v1/api-keys", {"name": "ci"}, member.api_key)
    assert created.status == 201, created.body
    key = CreateApiKeyResponse.from_dict(created.body)
    assert key.key.startswith("sk-") and key.key.endswith(key.key_suffix)
    assert key.key not in table_dump()

    me = call_api("GET", "/v1/users/me", api_key=key.key)
    assert me.status == 200 and me.body["id"] == member.user_id

    listed = call_api("GET", "/v1/api-keys", api_key=member.api_key)
    assert listed.status == 200
    names = [ApiKeyResponse.from_dict(item).name for item in listed.body]
    assert names == ["initial key", "ci"]
    assert all("key" not in item for item in listed.body)
    assert call_api("GET", f"/v1/api-keys/{key.id}", api_key=member.api_key).body["name"] == "ci"

    assert call_api("GET", f"/v1/api-keys/{key.id}", api_key=tenant.api_key).status == 404
    assert call_api("DELETE", f"/v1/api-keys/{key.id}", api_key=tenant.api_key).status == 404
    assert call_api("DELETE", f"/v1/api-keys/{key.id}", api_key=member.api_key).status == 204
    assert call_api("GET", "/v1/users/me", api_key=key.key).status == 401
    assert call_api("DELETE", f"/v1/api-keys/{key.id}", api_key=member.api_key).status == 404


def test_names_are_validated(member: CreatedUser) -> None:
    for body in ({"name": ""}, {"name": "x" * 101}, {}):
        response = call_api("POST", "/v1/api-keys", body, member.api_key)
        assert response.status == 422 and response.body["detail"][0]["loc"][:2] == ["body", "name"], body
