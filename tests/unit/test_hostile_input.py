"""Bodies, media types and parameters built to break parsers: each is a 4xx with a `detail`, never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import urllib3

from ksflow.identity.models import CreatedTenant
from tests.conftest import Response, call_api
from tests.unit.conftest import callback, get_run, signed

DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
LONG_INTEGER = "9" * 5000


def json_routes(definition_id: str) -> list[tuple[str, str]]:
    return [("POST", "/v1/folders"), ("POST", "/v1/documents"), ("POST", "/v1/api-keys"),
            ("POST", "/v1/workflow-definitions"), ("PUT", f"/v1/workflow-definitions/{definition_id}"),
            ("POST", f"/v1/workflow-definitions/{definition_id}/invoke"),
            ("POST", "/v1/user-permissions"), ("PATCH", f"/v1/user-permissions/{uuid.uuid4()}")]


def assert_invalid_json(response: Response, what: str) -> None:
    assert response.status == 422, (what, response.status, response.body)
    (error,) = response.body["detail"]
    assert error["loc"] == ["body"] and error["type"] == "json_invalid", what
    assert error["msg"].startswith("Invalid JSON: "), what


def test_absurd_json_is_422_on_every_json_route(tenant: CreatedTenant, knowledge: dict[str, str],
                                                create_definition: Any) -> None:
    definition_id = create_definition()["id"]
    bodies = {
        "nested 5,000 deep (array)": DEEP_ARRAY,
        "nested 5,000 deep (object)": DEEP_OBJECT,
        "a 5,000-digit integer": LONG_INTEGER,
        "a 5,000-digit integer in a field": f'{{"name": "n", "max_run_duration_seconds": {LONG_INTEGER}}}',
        "NaN": '{"name": NaN}',
        "a lone surrogate": f'{{"name": "\\ud800", "parent_path_part_id": "{tenant.root_path_part_id}"}}',
    }
    for method, path in json_routes(definition_id):
        for what, body in bodies.items():
            response = call_api(method, path, api_key=tenant.api_key, raw_body=body)
            assert_invalid_json(response, f"{method} {path}: {what}")
    folders = call_api("GET", f"/v1/folders?parent_path_part_id={tenant.root_path_part_id}", api_key=tenant.api_key)
    assert sorted(f["name"] for f in folders.body["items"]) == ["outputs", "sources"], "nothing was created"


def test_a_long_integer_in_the_query_is_422(tenant: CreatedTenant) -> None:
    for query in (f"limit={LONG_INTEGER}", f"offset={LONG_INTEGER}", f"limit=-{LONG_INTEGER}"):
        response = call_api("GET", f"/v1/workflow-definitions?{query}", api_key=tenant.api_key)
        assert response.status == 422 and response.body["detail"][0]["loc"][0] == "query", query


def test_absurd_callback_bodies_are_422_and_change_nothing(tenant: CreatedTenant,
                                                           silent_run: dict[str, Any]) -> None:
    run_id = silent_run["id"]
    for body in (DEEP_ARRAY, DEEP_OBJECT, LONG_INTEGER, f'{{"status": {LONG_INTEGER}}}'):
        by_key = callback(run_id, raw_body=body, secret=None, api_key=tenant.api_key)
        assert by_key.status == 422 and by_key.body["detail"][0]["type"] == "json_invalid", by_key.body
        by_signature = call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=signed(body), raw_body=body)
        assert by_signature.status == 422 and by_signature.body["detail"][0]["type"] == "json_invalid"
    assert get_run(run_id, tenant.api_key)["status"] == "RUNNING"


def test_media_types_and_their_parameters_are_case_insensitive(tenant: CreatedTenant) -> None:
    for number, content_type in enumerate(("APPLICATION/JSON", "Application/Json; Charset=UTF-8")):
        folder = {"name": f"f{number}", "parent_path_part_id": tenant.root_path_part_id}
        response = call_api("POST", "/v1/folders", folder, tenant.api_key, headers={"content-type": content_type})
        assert response.status == 201, (content_type, response.body)


def multipart(tenant: CreatedTenant, file_name: str) -> bytes:
    body, _ = urllib3.encode_multipart_formdata(
        [("file", (file_name, b"Seven years for invoices.", "text/plain")),
         ("path_part_id", tenant.root_path_part_id)], boundary="KsBoundary-42")
    return body


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; BOUNDARY=KsBoundary-42",
    "Multipart/Form-Data; Boundary=\"KsBoundary-42\"",
    "multipart/form-data; charset=utf-8; boundary=KsBoundary-42",
])
def test_any_spelling_of_the_boundary_parameter_uploads(tenant: CreatedTenant, content_type: str) -> None:
    response = call_api("POST", "/v1/documents/ingest", api_key=tenant.api_key,
                        headers={"content-type": content_type}, raw_body=multipart(tenant, "notes.txt"))
    assert response.status == 201, response.body
    document = call_api("GET", f"/v1/documents/{response.body['document_id']}", api_key=tenant.api_key)
    assert document.body["name"] == "notes.txt"


def test_an_empty_or_invalid_boundary_is_415(tenant: CreatedTenant) -> None:
    for parameter in ("boundary=", 'boundary=""', "BOUNDARY=", 'boundary="ends in a space "', f"boundary={'b' * 71}",
                      "charset=utf-8"):
        response = call_api("POST", "/v1/documents/ingest", api_key=tenant.api_key,
                            headers={"content-type": f"multipart/form-data; {parameter}"},
                            raw_body=multipart(tenant, "notes.txt"))
        assert response.status == 415, (parameter, response.body)
        assert "boundary" in response.body["detail"], parameter
    documents = call_api("GET", f"/v1/documents?parent_path_part_id={tenant.root_path_part_id}",
                         api_key=tenant.api_key)
    assert documents.body["items"] == [], "nothing was uploaded"


def test_a_request_without_a_body_is_judged_by_its_route_not_its_media_type(tenant: CreatedTenant) -> None:
    for path in ("/v1/folders", "/v1/documents/ingest"):
        for content_type in ("text/plain", "multipart/form-data", "application/octet-stream"):
            response = call_api("POST", path, api_key=tenant.api_key, headers={"content-type": content_type})
            assert response.status == 422, (path, content_type, response.body)
            assert response.body["detail"][0]["type"] == "missing"
