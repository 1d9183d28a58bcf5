"""The documents bucket as direct uploads and downloads use it: multipart uploads and presigned URLs.

Every upload is an S3 multipart upload, a file up to 5 GiB being its single part: until it is
assembled there is no object, and the bucket's lifecycle aborts what is never completed. The
assembled object carries `PENDING_TAG` until its completion removes it, and the lifecycle expires
objects still tagged (their completion never got to write the document).

Presigning happens in this process (no AWS call), with SigV4, which SSE-KMS objects need. The
URLs carry the endpoint boto3 is given (the local stack's S3 server, or S3 itself), and act with
the signing role's permissions for as long as both the URL and the role's session are valid
(Lambda's sessions outlast the hour an upload is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ksflow import aws
from ksflow.config import settings

PENDING_TAG_KEY = "ksflow-upload"
PENDING_TAG = f"{PENDING_TAG_KEY}=pending"
DOWNLOAD_SECONDS = 300


@cache
def _presigner() -> Any:
    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _bucket() -> str:
    return settings().documents_bucket


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    etag: str
    size: int


def begin(key: str, content_type: str | None) -> str:
    """A multipart upload whose object will carry the pending tag; returns its id."""
    response = aws.client("s3").create_multipart_upload(
        Bucket=_bucket(), Key=key, ContentType=content_type or "application/octet-stream", Tagging=PENDING_TAG)
    return str(response["UploadId"])


def part_url(key: str, upload_id: str, part_number: int, expires_in: int) -> str:
    url: str = _presigner().generate_presigned_url(
        "upload_part", Params={"Bucket": _bucket(), "Key": key, "UploadId": upload_id, "PartNumber": part_number},
        ExpiresIn=expires_in)
    return url


def download_url(key: str) -> str:
    url: str = _presigner().generate_presigned_url("get_object", Params={"Bucket": _bucket(), "Key": key},
                                                   ExpiresIn=DOWNLOAD_SECONDS)
    return url


def _missing(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in {"NoSuchUpload", "NoSuchKey", "404"}


def uploaded_parts(key: str, upload_id: str) -> list[UploadedPart] | None:
    """The parts S3 holds (uploads stay within 1,000 parts: one page); None when the upload is gone."""
    try:
        response = aws.client("s3").list_parts(Bucket=_bucket(), Key=key, UploadId=upload_id, MaxParts=1000)
    except ClientError as error:
        if _missing(error):
            return None
        raise
    return [UploadedPart(p["PartNumber"], p["ETag"], p["Size"]) for p in response.get("Parts", [])]


def assemble(key: str, upload_id: str, etags: list[str]) -> None:
    aws.client("s3").complete_multipart_upload(
        Bucket=_bucket(), Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]})


def stored_size(key: str) -> int | None:
    try:
        return int(aws.client("s3").head_object(Bucket=_bucket(), Key=key)["ContentLength"])
    except ClientError as error:
        if _missing(error):
            return None
        raise


def keep(key: str) -> None:
    """Remove the pending tag, so the lifecycle leaves the object alone (tags change without a copy)."""
    aws.client("s3").delete_object_tagging(Bucket=_bucket(), Key=key)


def abort(key: str, upload_id: str) -> None:
    """Drop an unassembled upload's parts; an upload already gone is fine."""
    try:
        aws.client("s3").abort_multipart_upload(Bucket=_bucket(), Key=key, UploadId=upload_id)
    except ClientError as error:
        if not _missing(error):
            raise
