"""`ksflow admin`: tenants and users for a deployed table (here, the moto one)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from ksflow import cli
from tests.conftest import call_api
from tests.unit.conftest import table_dump


def admin(capsys: pytest.CaptureFixture[str], table: str, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    cli.main(["admin", "--table-name", table, *args])
    out = capsys.readouterr().out
    return dict(json.loads(out))


def test_create_tenant_prints_credentials_that_work(aws_env: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    created = admin(capsys, aws_env["TABLE_NAME"], "create-tenant", "--name", "X")
    assert {"tenant_id", "root_path_part_id", "user_id", "api_key"} <= set(created)
    for field in ("tenant_id", "root_path_part_id", "user_id"):
        uuid.UUID(created[field])
    assert created["api_key"].startswith("sk-")
    root = call_api("GET", f"/v1/path-parts/{created['root_path_part_id']}", api_key=created["api_key"])
    assert root.status == 200, root.body
    assert root.body["materialized_path"] == "/"
    assert (root.body["can_read"], root.body["can_write"]) == (True, True)
    folder = call_api("POST", "/v1/folders", {"name": "First", "parent_path_part_id": created["root_path_part_id"]},
                      created["api_key"])
    assert folder.status == 201, folder.body


def test_each_tenant_is_separate(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    first = admin(capsys, aws_env["TABLE_NAME"], "create-tenant", "--name", "A")
    second = admin(capsys, aws_env["TABLE_NAME"], "create-tenant", "--name", "A")
    assert first["tenant_id"] != second["tenant_id"] and first["api_key"] != second["api_key"]
    assert call_api("GET", f"/v1/path-parts/{first['root_path_part_id']}", api_key=second["api_key"]).status == 404


def test_create_user_prints_a_key_for_that_role(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    table = aws_env["TABLE_NAME"]
    tenant = admin(capsys, table, "create-tenant", "--name", "X")
    user = admin(capsys, table, "create-user", "--tenant-id", tenant["tenant_id"], "--email", "u@x.test",
                 "--role", "USER")
    assert {"user_id", "api_key"} <= set(user)
    uuid.UUID(user["user_id"])
    assert user["user_id"] != tenant["user_id"]
    # The key authenticates, as a USER: no grants, so the root is not visible (404, not 401).
    root = call_api("GET", f"/v1/path-parts/{tenant['root_path_part_id']}", api_key=user["api_key"])
    assert root.status == 404, root.body
    me = call_api("GET", "/v1/users/me", api_key=user["api_key"])
    assert me.status == 200, me.body
    assert (me.body["id"], me.body["email"]) == (user["user_id"], "u@x.test")
    assert (me.body["current_tenant_id"], me.body["current_tenant_role"]) == (tenant["tenant_id"], "USER")
    admin_user = admin(capsys, table, "create-user", "--tenant-id", tenant["tenant_id"], "--email", "a@x.test",
                       "--role", "ADMIN")
    as_admin = call_api("GET", f"/v1/path-parts/{tenant['root_path_part_id']}", api_key=admin_user["api_key"])
    assert as_admin.status == 200, as_admin.body


def test_create_user_for_an_unknown_tenant_fails(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["admin", "--table-name", aws_env["TABLE_NAME"], "create-user", "--tenant-id", str(uuid.uuid4()),
                  "--email", "u@x.test", "--role", "USER"])
    assert exited.value.code not in (0, None)
    assert "api_key" not in capsys.readouterr().out


def test_create_user_rejects_an_unknown_role(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    tenant = admin(capsys, aws_env["TABLE_NAME"], "create-tenant", "--name", "X")
    with pytest.raises(SystemExit) as exited:
        cli.main(["admin", "--table-name", aws_env["TABLE_NAME"], "create-user", "--tenant-id", tenant["tenant_id"],
                  "--email", "u@x.test", "--role", "SUPERUSER"])
    assert exited.value.code not in (0, None)


def test_api_keys_are_stored_only_hashed(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    table = aws_env["TABLE_NAME"]
    tenant = admin(capsys, table, "create-tenant", "--name", "X")
    user = admin(capsys, table, "create-user", "--tenant-id", tenant["tenant_id"], "--email", "u@x.test",
                 "--role", "USER")
    stored = table_dump()
    assert tenant["tenant_id"] in stored and user["user_id"] in stored  # the scan sees the new items
    for key in (tenant["api_key"], user["api_key"]):
        assert key not in stored
        assert key.removeprefix("sk-") not in stored
