"""Upload records: item `UPLOAD#{upload_id}` in the tenant's partition.

A completion first claims the record (one conditional update), so concurrent completions of one
upload cannot both write a document; the claim lapses after `CLAIM_SECONDS`, longer than any API
request lives, so a completion that died can be retried. The completion's outcome is written with
the document (or, for a refusal, on its own) and answers every later completion. An expiry marks the
record only when it is neither settled nor claimed, so the bytes it removes are never a document's.
The table's TTL attribute removes the record a day after the upload expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.uploads.models import Outcome, UploadRecord

CLAIM_SECONDS = 120
RECORD_KEPT_AFTER_EXPIRY = timedelta(days=1)
_UNSETTLED = "attribute_not_exists(outcome)"
_UNCLAIMED = "(attribute_not_exists(claim_until) OR claim_until < :now)"


def _table() -> Any:
    return aws.table(settings().table_name)


def _key(tenant_id: str, upload_id: str) -> dict[str, str]:
    return {"pk": f"TENANT#{tenant_id}", "sk": f"UPLOAD#{upload_id}"}


def _record(item: dict[str, Any] | None) -> UploadRecord | None:
    return UploadRecord.model_validate(aws.from_item(item)) if item else None


def put(record: UploadRecord) -> None:
    ttl = int((record.upload_expires_at + RECORD_KEPT_AFTER_EXPIRY).timestamp())
    # Times as `clock.iso` writes them (always microseconds), so the conditions compare them as text.
    # Absent, not null: the conditions ask whether `outcome` and `claim_until` exist.
    _table().put_item(Item={**_key(record.tenant_id, record.upload_id),
                            **record.model_dump(mode="json", exclude_none=True),
                            "created_at": clock.iso(record.created_at),
                            "upload_expires_at": clock.iso(record.upload_expires_at), "expires_at": ttl},
                      ConditionExpression="attribute_not_exists(pk)")


def get(tenant_id: str, upload_id: str) -> UploadRecord | None:
    return _record(_table().get_item(Key=_key(tenant_id, upload_id), ConsistentRead=True).get("Item"))


def claim(tenant_id: str, upload_id: str, user_id: str, token: str) -> tuple[bool, UploadRecord | None]:
    """(True, record) when this request now completes the upload; else (False, the record as it is, if any).

    Only the upload's creator claims it, only before it expires and settles, and not while another
    request holds it.
    """
    now = clock.now()
    try:
        item = _table().update_item(
            Key=_key(tenant_id, upload_id), ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            UpdateExpression="SET claim_token = :token, claim_until = :until",
            ConditionExpression=f"attribute_exists(pk) AND created_by = :me AND {_UNSETTLED} "
                                f"AND upload_expires_at > :now AND {_UNCLAIMED}",
            ExpressionAttributeValues={":token": token, ":me": user_id, ":now": clock.iso(now),
                                       ":until": clock.iso(now + timedelta(seconds=CLAIM_SECONDS))},
        )["Attributes"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old = error.response.get("Item")
        return False, _record({k: TypeDeserializer().deserialize(v) for k, v in old.items()} if old else None)
    return True, _record(item)


def release(record: UploadRecord, token: str) -> None:
    """Give up a claim, so the client may complete again at once (after a mistake it can correct)."""
    try:
        _table().update_item(Key=_key(record.tenant_id, record.upload_id),
                             UpdateExpression="REMOVE claim_token, claim_until",
                             ConditionExpression="claim_token = :token", ExpressionAttributeValues={":token": token})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def _settling(record: UploadRecord, token: str, outcome: Outcome) -> dict[str, Any]:
    return {"TableName": settings().table_name, "Key": _key(record.tenant_id, record.upload_id),
            "UpdateExpression": "SET outcome = :outcome REMOVE claim_token, claim_until",
            "ConditionExpression": f"claim_token = :token AND {_UNSETTLED}",
            "ExpressionAttributeValues": {":token": token, ":outcome": aws.as_item(outcome.model_dump(mode="json"))}}


def settle_item(record: UploadRecord, token: str, outcome: Outcome) -> dict[str, Any]:
    """The transaction item that settles a claimed upload; it fails when the claim was lost."""
    return {"Update": _settling(record, token, outcome)}


def settle(record: UploadRecord, token: str, outcome: Outcome) -> None:
    update = _settling(record, token, outcome)
    update.pop("TableName")
    try:
        _table().update_item(**update)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def mark_expired(record: UploadRecord, outcome: Outcome) -> bool:
    """Settle an expired upload that nobody is completing; False when it settled or is claimed."""
    try:
        _table().update_item(
            Key=_key(record.tenant_id, record.upload_id), UpdateExpression="SET outcome = :outcome",
            ConditionExpression=f"attribute_exists(pk) AND {_UNSETTLED} AND upload_expires_at <= :now AND {_UNCLAIMED}",
            ExpressionAttributeValues={":now": clock.iso(clock.now()),
                                       ":outcome": aws.as_item(outcome.model_dump(mode="json"))})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return False
    return True


def expired_unsettled(items: list[dict[str, Any]], now: datetime) -> list[UploadRecord]:
    """Of these upload record items, those expired and never settled (the local stack's sweep reads them)."""
    records = [r for r in map(_record, items) if r is not None]
    return [r for r in records if r.outcome is None and r.upload_expires_at <= now]
