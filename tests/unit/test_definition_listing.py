"""Listing workflow definitions: mine, search, sorting, time windows and pages, as clients see them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from ksapi.models import PaginatedResponseWorkflowDefinitionResponse

from ksflow import clock
from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser, Role
from tests.conftest import call_api, definition_body
from tests.unit.conftest import PUBLIC_RUNNER_URL

PATH = "/v1/workflow-definitions"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DATE_PARAMETERS = ("created_after", "created_before", "updated_after", "updated_before")


def listing(api_key: str, **params: Any) -> dict[str, Any]:
    """One page as the SDK parses it (a failure to parse fails the test); the body as JSON."""
    response = call_api("GET", f"{PATH}?{urlencode(params)}", api_key=api_key)
    assert response.status == 200, response.body
    page = PaginatedResponseWorkflowDefinitionResponse.from_dict(response.body)
    assert page is not None and [str(item.id) for item in page.items] == [i["id"] for i in response.body["items"]]
    return dict(response.body)


def ids(api_key: str, **params: Any) -> list[str]:
    return [item["id"] for item in listing(api_key, limit=100, **params)["items"]]


def rejected_at(api_key: str, loc: list[str], **params: Any) -> None:
    response = call_api("GET", f"{PATH}?{urlencode(params)}", api_key=api_key)
    assert response.status == 422, response.body
    assert any(entry["loc"] == loc for entry in response.body["detail"]), response.body


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[datetime], None]]:
    """Set the service's clock; the real one is back at teardown."""
    real_now = clock.now
    yield lambda moment: monkeypatch.setattr(clock, "now", lambda: moment)
    monkeypatch.setattr(clock, "now", real_now)  # not undo(): that would also drop the fixtures' environment


@pytest.fixture
def create_at(frozen_clock: Callable[[datetime], None],
              create_definition: Callable[..., dict[str, Any]]) -> Callable[..., str]:
    """Create a definition at `moment` (its created_at and updated_at); its id."""
    def create(moment: datetime, **overrides: Any) -> str:
        frozen_clock(moment)
        return str(create_definition(**overrides)["id"])

    return create


@pytest.fixture
def colleague(tenant: CreatedTenant, member: CreatedUser, grant: Callable[[str, str, str], None]) -> CreatedUser:
    """A USER allowed to create definitions over the tenant's knowledge."""
    grant(member.user_id, tenant.root_path_part_id, "READ_WRITE")
    return member


# --- mine and visibility ---------------------------------------------------------------------------------------


def test_mine_narrows_an_owner_to_its_own_and_changes_nothing_for_a_user(
        tenant: CreatedTenant, colleague: CreatedUser, create_definition: Callable[..., dict[str, Any]]) -> None:
    owners = {create_definition()["id"] for _ in range(2)}
    users = {create_definition(api_key=colleague.api_key)["id"]}
    admin = identity.create_user(tenant.tenant_id, "admin@acme.test", Role.ADMIN)
    assert set(ids(tenant.api_key)) == set(ids(admin.api_key)) == owners | users
    assert set(ids(tenant.api_key, mine="true")) == owners
    assert ids(admin.api_key, mine="true") == []
    assert set(ids(colleague.api_key)) == set(ids(colleague.api_key, mine="true")) == users
    assert set(ids(tenant.api_key, mine="false")) == owners | users


# --- search ----------------------------------------------------------------------------------------------------


def test_search_is_a_case_insensitive_substring_of_name_or_description(
        tenant: CreatedTenant, create_definition: Callable[..., dict[str, Any]]) -> None:
    digest = create_definition(name="Weekly DIGEST")["id"]
    street = create_definition(name="Addresses", description="Files from the Straße office, north wing")["id"]
    rocket = create_definition(name="Launch 🚀 report")["id"]
    plain = create_definition(name="Plain", description=None)["id"]
    assert ids(tenant.api_key, search="digest") == [digest]
    assert ids(tenant.api_key, search="STRASSE") == [street]  # casefold: ß is ss
    assert ids(tenant.api_key, search="office, NORTH") == [street]  # a comma is part of the term
    assert ids(tenant.api_key, search="🚀 REP") == [rocket]
    assert set(ids(tenant.api_key, search="")) == {digest, street, rocket, plain}
    for term in ("🚀🚀", "weekly digests", "None"):
        assert listing(tenant.api_key, search=term) == {"items": [], "total": 0, "limit": 20, "offset": 0}


def test_search_is_at_most_255_characters(tenant: CreatedTenant,
                                          create_definition: Callable[..., dict[str, Any]]) -> None:
    create_definition(name="🚀" * 255)
    assert len(ids(tenant.api_key, search="🚀" * 255)) == 1
    rejected_at(tenant.api_key, ["query", "search"], search="🚀" * 256)


# --- sorting ---------------------------------------------------------------------------------------------------


def test_each_order_in_both_directions_breaks_ties_by_id(
        tenant: CreatedTenant, knowledge: dict[str, str], frozen_clock: Callable[[datetime], None],
        create_at: Callable[..., str]) -> None:
    beta = create_at(START, name="beta")
    # Created at the same time, names equal but for case, updated at the same time.
    twins = sorted([create_at(START + timedelta(seconds=1), name="Alpha"),
                    create_at(START + timedelta(seconds=1), name="alpha")])
    frozen_clock(START + timedelta(seconds=2))
    replaced = call_api("PUT", f"{PATH}/{beta}", definition_body(knowledge, PUBLIC_RUNNER_URL, name="beta"),
                        tenant.api_key)
    assert replaced.status == 200, replaced.body
    oldest_first = {"CREATED_AT": [beta, *twins], "UPDATED_AT": [*twins, beta], "NAME": [*twins, beta]}
    for sort_by, ascending in oldest_first.items():
        assert ids(tenant.api_key, sort_by=sort_by, sort_dir="ASC") == ascending, sort_by
        assert ids(tenant.api_key, sort_by=sort_by, sort_dir="DESC") == ascending[::-1], sort_by
    assert ids(tenant.api_key) == ids(tenant.api_key, sort_by="CREATED_AT") == [*twins[::-1], beta]
    assert ids(tenant.api_key, sort_by="UPDATED_AT") == [beta, *twins[::-1]]
    assert ids(tenant.api_key, sort_by="NAME") == [*twins, beta]


def test_pages_of_a_sorted_listing_neither_repeat_nor_skip(tenant: CreatedTenant,
                                                           create_at: Callable[..., str]) -> None:
    created = {create_at(START + timedelta(seconds=i // 3), name=f"Name {i % 2}") for i in range(7)}
    for sort_by in ("CREATED_AT", "UPDATED_AT", "NAME"):
        for sort_dir in ("ASC", "DESC"):
            pages = [listing(tenant.api_key, sort_by=sort_by, sort_dir=sort_dir, limit=2, offset=offset)
                     for offset in range(0, 8, 2)]
            paged = [item["id"] for page in pages for item in page["items"]]
            assert paged == ids(tenant.api_key, sort_by=sort_by, sort_dir=sort_dir), (sort_by, sort_dir)
            assert set(paged) == created
            assert [page["total"] for page in pages] == [7] * 4


# --- time windows ----------------------------------------------------------------------------------------------


def test_after_is_inclusive_and_before_is_strict(tenant: CreatedTenant, knowledge: dict[str, str],
                                                 frozen_clock: Callable[[datetime], None],
                                                 create_at: Callable[..., str]) -> None:
    moments = [START + timedelta(minutes=i) for i in range(3)]
    first, second, third = (create_at(moment) for moment in moments)
    frozen_clock(moments[2] + timedelta(minutes=1))
    replaced = call_api("PUT", f"{PATH}/{first}", definition_body(knowledge, PUBLIC_RUNNER_URL), tenant.api_key)
    assert replaced.status == 200, replaced.body

    def window(**bounds: datetime) -> set[str]:
        return set(ids(tenant.api_key, **{name: clock.iso(moment) for name, moment in bounds.items()}))

    assert window(created_after=moments[1]) == {second, third}
    assert window(created_before=moments[1]) == {first}
    assert window(created_after=moments[1], created_before=moments[2]) == {second}
    assert window(created_after=moments[1], created_before=moments[1]) == set()
    assert window(updated_after=moments[2]) == {first, third}
    assert window(updated_before=moments[2]) == {second}
    assert window(created_before=moments[1], updated_after=moments[2]) == {first}


def test_a_time_without_an_offset_is_utc(tenant: CreatedTenant, create_at: Callable[..., str]) -> None:
    create_at(START - timedelta(microseconds=1))
    later = create_at(START)
    paris = START.astimezone(timezone(timedelta(hours=1)))
    for written in ("2025-03-01T09:00:00", "2025-03-01T09:00:00Z", paris.isoformat()):
        assert ids(tenant.api_key, created_after=written) == [later], written


@pytest.mark.parametrize("name", ["created", "updated"])
def test_a_window_that_ends_before_it_starts_is_422(tenant: CreatedTenant, name: str) -> None:
    rejected_at(tenant.api_key, ["query", f"{name}_after"], **{
        f"{name}_after": clock.iso(START + timedelta(microseconds=1)), f"{name}_before": clock.iso(START)})


# --- invalid parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("sort_by", "STARTED_AT"), ("sort_by", "name"), ("sort_by", ""), ("sort_dir", "UP"), ("sort_dir", "desc"),
    ("mine", "sometimes"), ("created_after", "yesterday"), ("updated_before", "2025-02-30T00:00:00Z"),
    # pydantic alone would read a bare number as seconds since 1970
    ("updated_before", "0.5"), ("created_after", "1700000000"), ("created_before", "-1e3"),
])
def test_values_outside_the_schema_are_422(tenant: CreatedTenant, name: str, value: str) -> None:
    rejected_at(tenant.api_key, ["query", name], **{name: value})


# --- pages -----------------------------------------------------------------------------------------------------


def test_total_counts_the_filtered_definitions_and_items_hold_one_page(
        tenant: CreatedTenant, create_at: Callable[..., str]) -> None:
    reports = [create_at(START + timedelta(seconds=i), name=f"Report {i}") for i in range(3)]
    for i in range(2):
        create_at(START + timedelta(seconds=10 + i), name=f"Digest {i}")
    newest_first = reports[::-1]
    for offset, expected in ((0, newest_first[:2]), (2, newest_first[2:]), (3, [])):
        page = listing(tenant.api_key, search="report", limit=2, offset=offset)
        assert [item["id"] for item in page["items"]] == expected
        assert (page["total"], page["limit"], page["offset"]) == (3, 2, offset)
    assert listing(tenant.api_key, limit=1)["total"] == 5


# --- the OpenAPI document --------------------------------------------------------------------------------------


def test_openapi_describes_the_listing_parameters(aws_env: dict[str, str]) -> None:
    response = call_api("GET", "/openapi.json")
    assert response.status == 200
    document = response.body
    parameters = {p["name"]: p for p in document["paths"][PATH]["get"]["parameters"]}
    for name in ("mine", "search", "sort_by", "sort_dir", *DATE_PARAMETERS, "limit", "offset"):
        assert parameters[name]["in"] == "query" and not parameters[name]["required"], name
        assert parameters[name]["description"], name
    assert parameters["mine"]["schema"]["type"] == "boolean"
    assert parameters["search"]["schema"]["anyOf"][0]["maxLength"] == 255
    schemas = document["components"]["schemas"]

    def enum_of(name: str) -> list[str]:
        schema = parameters[name]["schema"]
        ref = schema.get("$ref") or next(s["$ref"] for s in schema["anyOf"] if "$ref" in s)
        return list(schemas[ref.rsplit("/", 1)[-1]]["enum"])

    assert enum_of("sort_by") == ["CREATED_AT", "UPDATED_AT", "NAME"]
    assert enum_of("sort_dir") == ["ASC", "DESC"]
    for name in DATE_PARAMETERS:
        assert {"type": "string", "format": "date-time"} in parameters[name]["schema"]["anyOf"], name
