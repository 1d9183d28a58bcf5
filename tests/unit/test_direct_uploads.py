"""Direct uploads: presigned part URLs, completion, size enforcement, expiry, and the document they make.

The bytes really travel to the presigned URLs: `requests` PUTs them and moto's mock answers as S3 does.
Multipart tests shrink the single-PUT limit and S3's minimum part size so a few KiB make several parts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import moto.s3.models
import pytest
import requests

from ksflow import clock
from ksflow.identity.models import CreatedTenant, CreatedUser, Principal, Role
from ksflow.local import uploads as local_sweeper
from ksflow.uploads import models, service
from tests import documents
from tests.conftest import call_api, wait_for
from tests.conftest import upload as upload_file
from tests.unit.test_api_knowledge import create_folder

TEXT = documents.text(60)  # 4,500 bytes: five parts of 1 KiB


def start(api_key: str, name: str, size: int, **fields: Any) -> Any:
    return call_api("POST", "/v1/documents/uploads", {"name": name, "size_bytes": size, **fields}, api_key)


def started(api_key: str, name: str, size: int, **fields: Any) -> dict[str, Any]:
    response = start(api_key, name, size, **fields)
    assert response.status == 201, response.body
    return dict(response.body)


def put_parts(upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """PUT each part's slice to its URL; the parts with the etags S3 answered."""
    size = upload["part_size"]
    parts = []
    for part in upload["parts"]:
        start_at = (part["part_number"] - 1) * size
        answer = requests.put(part["url"], data=data[start_at:start_at + size], timeout=10)
        assert answer.status_code == 200, answer.text
        parts.append({"part_number": part["part_number"], "etag": answer.headers["ETag"]})
    return parts


def complete(upload_id: str, api_key: str, parts: list[dict[str, Any]] | None = None) -> Any:
    return call_api("POST", f"/v1/documents/uploads/{upload_id}/complete",
                    {"parts": parts} if parts is not None else None, api_key)


def stored_keys(env: dict[str, str], tenant_id: str) -> list[str]:
    """Every object version, delete marker and unfinished multipart upload under the tenant's documents."""
    s3 = boto3.client("s3")
    prefix = f"tenants/{tenant_id}/document-versions/"
    versions = s3.list_object_versions(Bucket=env["DOCUMENTS_BUCKET"], Prefix=prefix)
    uploads = s3.list_multipart_uploads(Bucket=env["DOCUMENTS_BUCKET"], Prefix=prefix)
    return [v["Key"] for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", []),
                               *uploads.get("Uploads", [])]]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files above 1 KiB go multipart, in parts of 1 KiB."""
    monkeypatch.setattr(models, "MAX_PART_BYTES", 1024)
    monkeypatch.setattr(models, "MIN_PART_BYTES", 1024)
    monkeypatch.setattr(models, "MIB", 1)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)


def later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + delta)


def test_a_single_put_upload_becomes_an_ingested_document_with_a_download_link(
        aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id,
                     content_type="text/plain")
    assert upload["part_size"] == len(TEXT) and [p["part_number"] for p in upload["parts"]] == [1]
    put_parts(upload, TEXT)
    done = complete(upload["upload_id"], tenant.api_key)
    assert done.status == 201, done.body
    assert complete(upload["upload_id"], tenant.api_key).body == done.body  # asking again answers the same
    final = documents.finished(done.body["workflow_id"], tenant.api_key)
    assert final["status"] == "completed" and final["chunks_processed"] > 0
    document = call_api("GET", f"/v1/documents/{done.body['document_id']}", api_key=tenant.api_key).body
    assert document["name"] == "policy.txt" and document["active_version_id"] == done.body["document_version_id"]
    assert requests.get(document["active_version"]["asset_s3_url"], timeout=10).content == TEXT
    tags = boto3.client("s3").get_object_tagging(Bucket=aws_env["DOCUMENTS_BUCKET"],
                                                 Key=stored_keys(aws_env, tenant.tenant_id)[0])["TagSet"]
    assert tags == []  # kept: the lifecycle rule for abandoned uploads no longer applies


@pytest.mark.usefixtures("small_parts")
def test_a_multipart_upload_needs_every_etag_then_ingests(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "big.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    count = -(-len(TEXT) // 1024)
    assert upload["part_size"] == 1024 and len(upload["parts"]) == count > 2
    parts = put_parts(upload, TEXT)
    missing = complete(upload["upload_id"], tenant.api_key)
    assert missing.status == 422 and missing.body["detail"][0]["type"] == "upload.parts_incomplete"
    wrong = complete(upload["upload_id"], tenant.api_key, [*parts[:-1], {**parts[-1], "etag": '"0000"'}])
    assert wrong.status == 422 and wrong.body["detail"][0]["type"] == "upload.etag_mismatch"
    done = complete(upload["upload_id"], tenant.api_key, parts)  # the mistakes kept the bytes
    assert done.status == 201, done.body
    assert documents.finished(done.body["workflow_id"], tenant.api_key)["status"] == "completed"
    version = call_api("GET", f"/v1/document_versions/{done.body['document_version_id']}", api_key=tenant.api_key)
    assert requests.get(version.body["asset_s3_url"], timeout=10).content == TEXT


@pytest.mark.usefixtures("small_parts")
def test_a_part_not_uploaded_yet_can_still_be_uploaded(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "big.txt", 3000, path_part_id=tenant.root_path_part_id)
    data = TEXT[:3000]
    first_two = put_parts({**upload, "parts": upload["parts"][:2]}, data)
    early = complete(upload["upload_id"], tenant.api_key, first_two)
    assert early.status == 422 and early.body["detail"][0]["msg"].startswith("Part 3 has not been uploaded")
    parts = put_parts(upload, data)
    assert complete(upload["upload_id"], tenant.api_key, parts).status == 201


@pytest.mark.parametrize("actual", [len(TEXT) - 10, len(TEXT) + 10])
def test_bytes_that_differ_from_the_declared_size_are_refused_and_removed(
        aws_env: dict[str, str], tenant: CreatedTenant, actual: int) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts({**upload, "part_size": actual}, (TEXT * 2)[:actual])
    refused = complete(upload["upload_id"], tenant.api_key)
    assert refused.status == 422 and refused.body["detail"][0]["type"] == "upload.size_mismatch"
    assert stored_keys(aws_env, tenant.tenant_id) == []
    assert complete(upload["upload_id"], tenant.api_key).body == refused.body
    listing = call_api("GET", f"/v1/documents?parent_path_part_id={tenant.root_path_part_id}", api_key=tenant.api_key)
    assert listing.body["items"] == []


@pytest.mark.usefixtures("small_parts")
def test_multipart_bytes_of_the_wrong_size_are_refused_and_removed(aws_env: dict[str, str],
                                                                   tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "big.txt", 2500, path_part_id=tenant.root_path_part_id)
    parts = put_parts(upload, TEXT[:2400])  # the last part is short
    refused = complete(upload["upload_id"], tenant.api_key, parts)
    assert refused.status == 422 and refused.body["detail"][0]["type"] == "upload.size_mismatch"
    assert stored_keys(aws_env, tenant.tenant_id) == []


def test_an_upload_completed_after_it_expired_is_gone_with_its_bytes(
        aws_env: dict[str, str], tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    assert clock.parse(upload["expires_at"]) <= clock.now() + timedelta(hours=1)
    put_parts(upload, TEXT)
    later(monkeypatch, timedelta(hours=1, seconds=1))
    gone = complete(upload["upload_id"], tenant.api_key)
    assert gone.status == 410, gone.body
    assert stored_keys(aws_env, tenant.tenant_id) == []
    assert complete(upload["upload_id"], tenant.api_key).status == 410


@pytest.mark.usefixtures("small_parts")
def test_the_sweep_removes_expired_unfinished_uploads_only(
        aws_env: dict[str, str], tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    abandoned = started(tenant.api_key, "abandoned.txt", 2500, path_part_id=tenant.root_path_part_id)
    put_parts(abandoned, TEXT[:2500])
    finished = started(tenant.api_key, "finished.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    done = complete(finished["upload_id"], tenant.api_key, put_parts(finished, TEXT))
    assert done.status == 201
    assert service.sweep_expired(local_sweeper.upload_records()) == 0  # nothing expired yet
    later(monkeypatch, timedelta(hours=1, seconds=1))
    assert service.sweep_expired(local_sweeper.upload_records()) == 1
    assert service.sweep_expired(local_sweeper.upload_records()) == 0
    kept = stored_keys(aws_env, tenant.tenant_id)
    assert len(kept) == 1 and done.body["document_version_id"] in kept[0]
    assert complete(abandoned["upload_id"], tenant.api_key).status == 410
    assert complete(finished["upload_id"], tenant.api_key).body == done.body


def test_the_local_stack_sweeps_expired_uploads_in_the_background(
        aws_env: dict[str, str], tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts(upload, TEXT)
    stop = threading.Event()
    sweeper = local_sweeper.start(stop, interval=0.05)
    try:
        time.sleep(0.2)
        assert stored_keys(aws_env, tenant.tenant_id) != []  # not expired yet: kept
        later(monkeypatch, timedelta(hours=1, seconds=1))
        wait_for(lambda: stored_keys(aws_env, tenant.tenant_id) == [], timeout=5)
    finally:
        stop.set()
        sweeper.join()
    assert complete(upload["upload_id"], tenant.api_key).status == 410


def test_names_of_255_four_byte_characters_upload(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    name = "\U0001d11e" * 255
    upload = started(tenant.api_key, name, len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts(upload, TEXT)
    done = complete(upload["upload_id"], tenant.api_key)
    assert done.status == 201, done.body
    document = call_api("GET", f"/v1/documents/{done.body['document_id']}", api_key=tenant.api_key).body
    assert document["name"] == name
    assert start(tenant.api_key, name + "x", 10, path_part_id=tenant.root_path_part_id).status == 422
    documents.finished(done.body["workflow_id"], tenant.api_key)


@pytest.mark.parametrize(("size", "status"), [(0, 422), (-1, 422), (models.MAX_UPLOAD_BYTES + 1, 422)])
def test_sizes_outside_what_s3_takes_are_422(tenant: CreatedTenant, size: int, status: int) -> None:
    assert start(tenant.api_key, "x.txt", size, path_part_id=tenant.root_path_part_id).status == status


@pytest.mark.parametrize("fields", [{"content_type": "text/plain\r\nx-amz-acl: public-read"},
                                    {"name": "a/b.txt"}, {"storage_class": "GLACIER"}])
def test_header_injection_bad_names_and_unknown_fields_are_422(tenant: CreatedTenant, fields: dict[str, str]) -> None:
    body = {"name": "x.txt", "size_bytes": 10, "path_part_id": tenant.root_path_part_id, **fields}
    response = call_api("POST", "/v1/documents/uploads", body, tenant.api_key)
    assert response.status == 422, response.body


def test_a_place_is_required_and_must_be_the_document_s(tenant: CreatedTenant) -> None:
    nowhere = start(tenant.api_key, "x.txt", 10)
    assert nowhere.status == 422
    folder = create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    created = documents.ingest(tenant.root_path_part_id, "a.txt", TEXT, tenant.api_key)
    elsewhere = start(tenant.api_key, "a.txt", 10, document_id=created["document_id"],
                      path_part_id=folder["path_part_id"])
    assert elsewhere.status == 422 and elsewhere.body["detail"][0]["loc"] == ["body", "path_part_id"]
    documents.finished(created["workflow_id"], tenant.api_key)


def test_largest_upload_stays_within_a_thousand_parts_of_at_most_5_gib() -> None:
    for size in (1, models.MAX_PART_BYTES, models.MAX_PART_BYTES + 1, 50 * models.MAX_PART_BYTES,
                 models.MAX_UPLOAD_BYTES):
        part = models.part_size_for(size)
        count = -(-size // part)
        assert count <= models.MAX_PARTS and part <= models.MAX_PART_BYTES
        assert count == 1 or part >= models.MIN_PART_BYTES


def test_a_new_version_by_upload_becomes_the_active_one(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    first = documents.ingest(tenant.root_path_part_id, "policy.txt", b"first", tenant.api_key)
    documents.finished(first["workflow_id"], tenant.api_key)
    upload = started(tenant.api_key, "policy-v2.txt", len(TEXT), document_id=first["document_id"])
    put_parts(upload, TEXT)
    done = complete(upload["upload_id"], tenant.api_key)
    assert done.status == 201 and done.body["document_id"] == first["document_id"]
    document = call_api("GET", f"/v1/documents/{first['document_id']}", api_key=tenant.api_key).body
    assert document["active_version"]["version"] == 1
    assert requests.get(document["active_version"]["asset_s3_url"], timeout=10).content == TEXT
    documents.finished(done.body["workflow_id"], tenant.api_key)


def test_a_version_uploaded_meanwhile_comes_before_the_one_completed_later(aws_env: dict[str, str],
                                                                          tenant: CreatedTenant) -> None:
    first = documents.ingest(tenant.root_path_part_id, "policy.txt", b"first", tenant.api_key)
    upload = started(tenant.api_key, "policy.txt", len(TEXT), document_id=first["document_id"])
    put_parts(upload, TEXT)
    meanwhile = upload_file(f"/v1/documents/{first['document_id']}/ingest", "policy.txt", b"second", tenant.api_key)
    assert meanwhile.status == 201
    done = complete(upload["upload_id"], tenant.api_key)
    assert done.status == 201, done.body
    document = call_api("GET", f"/v1/documents/{first['document_id']}", api_key=tenant.api_key).body
    assert document["active_version_id"] == done.body["document_version_id"]
    assert document["active_version"]["version"] == 2
    for workflow_id in (first["workflow_id"], meanwhile.body["workflow_id"], done.body["workflow_id"]):
        documents.finished(workflow_id, tenant.api_key)


def test_another_tenant_or_user_cannot_complete_an_upload(aws_env: dict[str, str], tenant: CreatedTenant,
                                                         other_tenant: CreatedTenant, member: CreatedUser,
                                                         grant: Callable[[str, str, str], None]) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts(upload, TEXT)
    assert complete(upload["upload_id"], other_tenant.api_key).status == 404
    grant(member.user_id, tenant.root_path_part_id, "READ_WRITE")
    assert complete(upload["upload_id"], member.api_key).status == 404
    assert complete("6f1c8c4e-0000-4000-8000-000000000000", tenant.api_key).status == 404
    done = complete(upload["upload_id"], tenant.api_key)
    assert done.status == 201
    documents.finished(done.body["workflow_id"], tenant.api_key)


def test_a_user_needs_write_access_to_upload(tenant: CreatedTenant, member: CreatedUser,
                                            grant: Callable[[str, str, str], None]) -> None:
    folder = create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    assert start(member.api_key, "x.txt", 10, path_part_id=folder["path_part_id"]).status == 404
    grant(member.user_id, folder["path_part_id"], "READ_ONLY")
    forbidden = start(member.api_key, "x.txt", 10, path_part_id=folder["path_part_id"])
    assert forbidden.status == 403, forbidden.body


def test_write_access_lost_before_completing_refuses_the_upload(
        aws_env: dict[str, str], tenant: CreatedTenant, member: CreatedUser,
        grant: Callable[[str, str, str], None]) -> None:
    folder = create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    grant(member.user_id, folder["path_part_id"], "READ_WRITE")
    upload = started(member.api_key, "x.txt", len(TEXT), path_part_id=folder["path_part_id"])
    put_parts(upload, TEXT)
    listed = call_api("GET", f"/v1/user-permissions?tenant_id={tenant.tenant_id}&user_id={member.user_id}",
                      api_key=tenant.api_key)
    [permission] = listed.body["items"]
    lowered = call_api("PATCH", f"/v1/user-permissions/{permission['id']}", {"capability": "READ_ONLY"},
                       tenant.api_key)
    assert lowered.status == 200, lowered.body
    assert complete(upload["upload_id"], member.api_key).status == 403
    assert stored_keys(aws_env, tenant.tenant_id) == []


def test_completing_after_the_parent_was_deleted_is_404_and_keeps_nothing(
        aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    folder = create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    upload = started(tenant.api_key, "x.txt", len(TEXT), path_part_id=folder["path_part_id"])
    put_parts(upload, TEXT)
    assert call_api("DELETE", f"/v1/folders/{folder['id']}", api_key=tenant.api_key).status == 204
    gone = complete(upload["upload_id"], tenant.api_key)
    assert gone.status == 404 and gone.body["detail"] == "Parent folder not found"
    assert stored_keys(aws_env, tenant.tenant_id) == []


def test_a_name_taken_meanwhile_is_409_and_keeps_nothing(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "x.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts(upload, TEXT)
    create_folder(tenant.root_path_part_id, "x.txt", tenant.api_key)
    taken = complete(upload["upload_id"], tenant.api_key)
    assert taken.status == 409, taken.body
    assert stored_keys(aws_env, tenant.tenant_id) == []
    assert start(tenant.api_key, "x.txt", 10, path_part_id=tenant.root_path_part_id).status == 409


def test_concurrent_completes_make_one_document(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    upload = started(tenant.api_key, "policy.txt", len(TEXT), path_part_id=tenant.root_path_part_id)
    put_parts(upload, TEXT)
    owner = Principal(tenant_id=tenant.tenant_id, user_id=tenant.user_id, role=Role.OWNER)
    answers: list[Any] = []
    barrier = threading.Barrier(4)

    def race() -> None:
        barrier.wait()
        try:
            answers.append(service.complete(owner, upload["upload_id"], None).model_dump(mode="json"))
        except Exception as error:  # the losers' answers are what the test looks at
            answers.append(getattr(error, "status_code", repr(error)))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [a for a in answers if isinstance(a, dict)]
    assert created and all(a == created[0] for a in created)
    assert all(a in (409,) for a in answers if not isinstance(a, dict)), answers
    assert complete(upload["upload_id"], tenant.api_key).body == created[0]
    listing = call_api("GET", f"/v1/documents?parent_path_part_id={tenant.root_path_part_id}", api_key=tenant.api_key)
    assert [d["id"] for d in listing.body["items"]] == [created[0]["document_id"]]
    documents.finished(created[0]["workflow_id"], tenant.api_key)
    ingestions = call_api("GET", "/v1/workflows/document_versions", api_key=tenant.api_key).body
    assert ingestions["total"] == 1, ingestions  # listed and counted once, like an upload through the API
    assert [i["workflow_id"] for i in ingestions["items"]] == [created[0]["workflow_id"]]


def test_metadata_only_versions_have_no_download_link(tenant: CreatedTenant) -> None:
    response = call_api("POST", "/v1/documents", {"name": "note", "parent_path_part_id": tenant.root_path_part_id,
                                                  "document_type": "PLAINTEXT", "document_origin": "SOURCE"},
                        tenant.api_key)
    assert response.status == 201, response.body
    assert response.body["active_version"]["asset_s3_url"] is None


def test_documents_uploaded_through_the_api_get_a_short_lived_download_link(tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "a.txt", TEXT, tenant.api_key)
    version = call_api("GET", f"/v1/document_versions/{created['document_version_id']}", api_key=tenant.api_key).body
    url = version["asset_s3_url"]
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature=" in url
    assert requests.get(url, timeout=10).content == TEXT
    documents.finished(created["workflow_id"], tenant.api_key)
