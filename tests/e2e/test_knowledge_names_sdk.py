"""Long and invalid names through the local stack with the `ksapi` SDK."""

from __future__ import annotations

import uuid

import ksapi
import pytest
from ksapi.exceptions import ApiException

from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import _client

pytestmark = pytest.mark.e2e

EMOJI = "\U0001F600"  # 4 bytes in UTF-8: 255 of them are more than a DynamoDB sort key holds


def _refused(call: object) -> ApiException:
    with pytest.raises(ApiException) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_255_emoji_names_round_trip_and_bad_file_names_are_refused(local_stack: LocalStack) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    folders, docs = ksapi.FoldersApi(owner), ksapi.DocumentsApi(owner)
    root = local_stack.credentials["root_path_part_id"]
    name = EMOJI * 247 + uuid.uuid4().hex[:8]
    folder = folders.create_folder(ksapi.CreateFolderRequest(name=name, parent_path_part_id=root))
    assert folder.name == name and folder.materialized_path == f"/{name}"
    assert folders.get_folder(folder.id).name == name
    assert name in [f.name for f in folders.list_folders(parent_path_part_id=root, limit=100).items]

    document_name = "\U0001F4C4" * 255
    document = docs.create_document(ksapi.CreateDocumentRequest(
        name=document_name, parent_path_part_id=folder.path_part_id, document_type="PLAINTEXT",
        document_origin="SOURCE"))
    uploaded = docs.ingest_document(file=(EMOJI * 251 + ".txt", b"hello"), path_part_id=folder.path_part_id)
    contents = folders.list_folder_contents(folder.id, limit=10)
    assert sorted(i.actual_instance.name for i in contents.items) == sorted([document_name, EMOJI * 251 + ".txt"])
    assert docs.get_document(document.id).materialized_path == f"/{name}/{document_name}"

    for file_name in ("x" * 304, "y" * 1100, "bell\x07.txt", ".."):
        refused = _refused(lambda file_name=file_name: docs.ingest_document(
            file=(file_name, b"hello"), path_part_id=folder.path_part_id, name="fine.txt"))
        assert refused.status == 422 and '"file"' in str(refused.body), (file_name[:8], refused.body)
    assert docs.list_documents(parent_path_part_id=folder.path_part_id).total == 2

    folders.delete_folder(folder.id)
    for gone in (lambda: folders.get_folder(folder.id), lambda: docs.get_document(uploaded.document_id)):
        assert _refused(gone).status == 404
    late = _refused(lambda: folders.create_folder(ksapi.CreateFolderRequest(
        name="late", parent_path_part_id=folder.path_part_id)))
    assert late.status == 404
