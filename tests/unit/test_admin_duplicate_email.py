"""`ksflow admin create-user` refuses an email the tenant already has, in one line, and writes nothing."""

from __future__ import annotations

import boto3
import pytest

from ksflow import cli
from ksflow.identity import store
from ksflow.identity.models import CreatedTenant, Role


def create_user(table: str, tenant_id: str, email: str) -> list[str]:
    return ["admin", "--table-name", table, "create-user", "--tenant-id", tenant_id, "--email", email, "--role", "USER"]


def api_key_count(table: str) -> int:
    items = boto3.resource("dynamodb").Table(table).scan()["Items"]
    return sum(item["pk"].startswith("APIKEY#") for item in items)


def test_a_duplicate_email_is_refused_in_one_line(aws_env: dict[str, str], tenant: CreatedTenant,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    table = aws_env["TABLE_NAME"]
    cli.main(create_user(table, tenant.tenant_id, "ana@acme.test"))
    capsys.readouterr()
    for duplicate in ("ana@acme.test", " Ana@ACME.test"):
        with pytest.raises(SystemExit) as exited:
            cli.main(create_user(table, tenant.tenant_id, duplicate))
        message = str(exited.value.code)
        assert message == f"tenant {tenant.tenant_id} already has a user with email {duplicate}"
        assert "\n" not in message
    assert capsys.readouterr().out == ""


def test_the_owner_email_is_taken_too(tenant: CreatedTenant) -> None:
    with pytest.raises(store.DuplicateEmail):
        store.create_user(tenant.tenant_id, "owner@acme.test", Role.ADMIN)


def test_the_same_email_may_exist_in_another_tenant(tenant: CreatedTenant, other_tenant: CreatedTenant) -> None:
    first = store.create_user(tenant.tenant_id, "shared@example.test", Role.USER)
    second = store.create_user(other_tenant.tenant_id, "shared@example.test", Role.USER)
    assert first.user_id != second.user_id


def test_a_refused_user_gets_no_api_key(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    store.create_user(tenant.tenant_id, "bo@acme.test", Role.USER)
    keys_before = api_key_count(aws_env["TABLE_NAME"])
    with pytest.raises(store.DuplicateEmail):
        store.create_user(tenant.tenant_id, "bo@acme.test", Role.USER)
    assert api_key_count(aws_env["TABLE_NAME"]) == keys_before
