"""Direct uploads: hand out part URLs for a document (or new version), then complete what the client put.

Creating an upload reserves the document version id (and, for a new document, the document id), so
the bytes land at the version's final key and completing never copies them. Completing checks the
parts S3 holds against the declared size, assembles them, and writes the document with its ingestion
record in the transaction `POST /v1/documents/ingest` writes, then starts the ingestion. A completion
that is refused (wrong size, a name now taken, a parent now gone, write access lost) removes the
bytes; one the client can correct (missing or wrong etags, a part not uploaded yet) keeps them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from ksflow.identity.models import Principal
from ksflow.ingestion import files
from ksflow.ingestion import service as ingestion
from ksflow.ingestion.models import IngestDocumentResponse, workflow_id_for
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import PartType, PathPart
from ksflow.uploads import objects, store
from ksflow.uploads.models import (
    UPLOAD_LIFETIME,
    CompletedPart,
    CreateUploadRequest,
    CreateUploadResponse,
    Gone,
    Outcome,
    PartUrl,
    UploadRecord,
    part_size_for,
)

EXPIRED = "This upload expired before it was completed; its bytes were removed. Start a new upload"
# S3's answers to an assembly whose parts it will not join (a part below 5 MiB that is not the last, ...).
_UNJOINABLE = {"EntityTooSmall", "InvalidPart", "InvalidPartOrder"}


class Refusal(Exception):
    """The upload cannot become a document: its bytes go, and every later completion gets `error`."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Target:
    """Where a completed upload goes: a new document under `parent`, or a new version of `document`."""

    parent: PathPart | None = None
    document: PathPart | None = None
    active_version: PathPart | None = None


def _writable(access: knowledge.Access, part: PathPart | None, what: str) -> PathPart:
    if part is None or not access.can_read(part):
        raise NotFound(f"{what[0].upper()}{what[1:]} not found")
    if not access.can_write(part):
        raise Forbidden(f"You do not have write access to the {what}")
    return part


def _new_document_target(principal: Principal, parent_id: str) -> Target:
    parent = knowledge.get_path_part(principal.tenant_id, parent_id)
    if parent is not None and parent.part_type is not PartType.FOLDER:
        parent = None
    return Target(parent=_writable(knowledge.Access(principal), parent, "parent folder"))


def _new_version_target(principal: Principal, document_id: str) -> Target:
    document = _writable(knowledge.Access(principal),
                         knowledge.get_by_object_id(principal.tenant_id, document_id, PartType.DOCUMENT), "document")
    active = knowledge.get_by_object_id(principal.tenant_id, str(document.active_version_id),
                                        PartType.DOCUMENT_VERSION)
    if active is None:
        raise NotFound("Document not found")
    return Target(document=document, active_version=active)


def _target(principal: Principal, request: CreateUploadRequest) -> Target:
    if request.document_id is None:
        target = _new_document_target(principal, str(request.path_part_id))
        assert target.parent is not None
        if knowledge.child_named(target.parent, request.name) is not None:
            raise (ingestion.name_taken(target.parent, request.name)
                   or Conflict(f"A path part named {request.name!r} already exists in this folder"))
        return target
    target = _new_version_target(principal, str(request.document_id))
    assert target.document is not None
    if request.path_part_id is not None and str(request.path_part_id) != target.document.parent_id:
        raise Invalid(["body", "path_part_id"], "The document is not in this folder; leave path_part_id out "
                                                "to upload a new version")
    return target


def create(principal: Principal, request: CreateUploadRequest) -> CreateUploadResponse:
    """Check where the file goes, start a multipart upload at the reserved version's key, sign a URL per part."""
    target = _target(principal, request)
    now = clock.now()
    expires_at = now + UPLOAD_LIFETIME
    version_id = str(uuid.uuid4())
    part_size = part_size_for(request.size_bytes)
    key = files.object_key(principal.tenant_id, version_id, request.name)
    record = UploadRecord(
        tenant_id=principal.tenant_id, upload_id=str(uuid.uuid4()), created_by=principal.user_id, created_at=now,
        upload_expires_at=expires_at, name=request.name, content_type=request.content_type,
        size_bytes=request.size_bytes, part_size=part_size, part_count=-(-request.size_bytes // part_size),
        parent_id=target.parent.path_part_id if target.parent else None,
        document_id=target.document.metadata_obj_id if target.document else str(uuid.uuid4()),
        document_version_id=version_id, object_key=key,
        multipart_upload_id=objects.begin(key, request.content_type),
    )
    store.put(record)
    seconds = int(UPLOAD_LIFETIME.total_seconds())
    return CreateUploadResponse(
        upload_id=uuid.UUID(record.upload_id), expires_at=expires_at, part_size=part_size,
        parts=[PartUrl(part_number=n, url=objects.part_url(key, record.multipart_upload_id, n, seconds))
               for n in range(1, record.part_count + 1)])


def _replay(principal: Principal, record: UploadRecord | None) -> IngestDocumentResponse:
    """The answer for an upload this request could not claim."""
    if record is None or record.created_by != principal.user_id:
        raise NotFound("Upload not found")
    if record.outcome is not None:
        if record.outcome.status == 201:
            return IngestDocumentResponse.model_validate(record.outcome.body)
        error = ApiError(record.outcome.body)
        error.status_code = record.outcome.status
        raise error
    now = clock.now()
    if now >= record.upload_expires_at and (record.claim_until is None or record.claim_until < now):
        expire(record)
        raise Gone(EXPIRED)
    raise Conflict("Another request is completing this upload; ask again in a few seconds")


def complete(principal: Principal, upload_id: str, parts: list[CompletedPart] | None) -> IngestDocumentResponse:
    """Completing twice (or concurrently) answers the same, with one document."""
    token = str(uuid.uuid4())
    claimed, record = store.claim(principal.tenant_id, upload_id, principal.user_id, token)
    if not claimed or record is None:
        return _replay(principal, record)
    try:
        return _complete(principal, record, token, parts)
    except Refusal as refusal:
        _discard(record)
        store.settle(record, token, Outcome(status=refusal.error.status_code, body=refusal.error.detail))
        raise refusal.error from None
    except Exception as error:
        if _lost_claim(error):  # an expiry or another completion settled it meanwhile
            return _replay(principal, store.get(record.tenant_id, record.upload_id))
        store.release(record, token)
        raise


def _complete(principal: Principal, record: UploadRecord, token: str,
              parts: list[CompletedPart] | None) -> IngestDocumentResponse:
    try:
        target = (_new_document_target(principal, record.parent_id) if record.parent_id
                  else _new_version_target(principal, record.document_id))
    except ApiError as error:
        raise Refusal(error) from error
    _assemble(record, parts)
    objects.keep(record.object_key)
    stored = ingestion.StoredFile(file_name=record.name, content_type=record.content_type, size=record.size_bytes,
                                  document_version_id=record.document_version_id, document_id=record.document_id)
    result = IngestDocumentResponse.model_validate({"workflow_id": workflow_id_for(record.document_version_id),
                                                    "document_id": record.document_id,
                                                    "document_version_id": record.document_version_id})
    settled = [store.settle_item(record, token, Outcome(status=201, body=result.model_dump(mode="json")))]
    try:
        if target.parent is not None:
            ingestion.ingest_new_document(principal, target.parent, record.name, stored, settled)
        else:
            assert target.document is not None and target.active_version is not None
            ingestion.ingest_new_version(principal, target.document, target.active_version, stored, settled)
    except ApiError as error:
        # Lost claim: settled meanwhile. A version conflict: another version became active since the
        # document was read; completing again numbers this one after it.
        if _lost_claim(error) or (isinstance(error, Conflict) and target.parent is None):
            raise
        raise Refusal(error) from error
    return result


def _assemble(record: UploadRecord, parts: list[CompletedPart] | None) -> None:
    """Join the parts into the object, or find it joined by an earlier completion that stopped short."""
    uploaded = objects.uploaded_parts(record.object_key, record.multipart_upload_id)
    if uploaded is None:
        if objects.stored_size(record.object_key) != record.size_bytes:
            raise Refusal(Invalid(["body"], "The uploaded file is gone; start a new upload", "upload.missing"))
        return
    by_number = {p.part_number: p for p in uploaded}
    missing = [n for n in range(1, record.part_count + 1) if n not in by_number]
    if missing:
        raise Invalid(["body"], f"Part {missing[0]} has not been uploaded yet ({len(missing)} part(s) missing)",
                      "upload.part_missing")
    etags = _etags(record, parts, [by_number[n].etag for n in range(1, record.part_count + 1)])
    size = sum(by_number[n].size for n in range(1, record.part_count + 1))
    if size != record.size_bytes:
        raise Refusal(Invalid(["body"], f"The uploaded bytes ({size}) differ from size_bytes ({record.size_bytes}); "
                                        "nothing was kept", "upload.size_mismatch"))
    try:
        objects.assemble(record.object_key, record.multipart_upload_id, etags)
    except ClientError as error:
        if error.response["Error"]["Code"] not in _UNJOINABLE:
            raise
        raise Refusal(Invalid(["body"], f"S3 refused to join the parts ({error.response['Error']['Code']}): every "
                                        f"part but the last must be {record.part_size} bytes; nothing was kept",
                              "upload.parts_refused")) from error


def _etags(record: UploadRecord, parts: list[CompletedPart] | None, uploaded: list[str]) -> list[str]:
    """The client's etags, which must name the parts S3 holds; a single part's may be left out."""
    if not parts and record.part_count == 1:
        return uploaded
    given = {p.part_number: p.etag.strip('"') for p in parts or []}
    expected = set(range(1, record.part_count + 1))
    if set(given) != expected or len(given) != len(parts or []):
        raise Invalid(["body", "parts"], f"Give each of the {record.part_count} parts (1 to {record.part_count}) "
                                         "once, with the etag its upload answered", "upload.parts_incomplete")
    wrong = next((n for n in sorted(given) if given[n] != uploaded[n - 1].strip('"')), None)
    if wrong is not None:
        raise Invalid(["body", "parts"], f"Part {wrong}'s etag is not the one of the uploaded part",
                      "upload.etag_mismatch")
    return uploaded


def _lost_claim(error: BaseException) -> bool:
    """Whether the transaction failed on the upload record's own condition (always its last item)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__
    if cause is None:
        return False
    reasons = cause.response.get("CancellationReasons") or []
    return bool(reasons) and len(reasons) - 1 in aws.failed_conditions(cause)


def _discard(record: UploadRecord) -> None:
    """The upload's parts and every version of its object: the reserved version key is the upload's alone."""
    objects.abort(record.object_key, record.multipart_upload_id)
    files.delete_all_versions([files.version_prefix(record.tenant_id, record.document_version_id)])


def expire(record: UploadRecord) -> None:
    """Settle an expired upload as 410 and remove its bytes, unless it settled or is being completed."""
    if store.mark_expired(record, Outcome(status=410, body=EXPIRED)):
        _discard(record)


def sweep_expired(record_items: list[dict[str, Any]]) -> int:
    """Expire those of these upload records that expired (where no lifecycle rule runs); how many were swept."""
    records = store.expired_unsettled(record_items, clock.now())
    for record in records:
        expire(record)
    return len(records)
