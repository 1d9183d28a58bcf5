"""Deployment settings, read from the environment each Lambda (or the local stack) is given."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Settings:
    table_name: str
    kms_key_id: str
    run_state_machine_arn: str
    public_api_url: str
    scheduler_group_name: str
    scheduler_role_arn: str
    scheduler_dlq_arn: str
    expiry_function_arn: str
    allow_loopback_runners: bool
    expiry_grace_seconds: int
    documents_bucket: str
    ingestion_state_machine_arn: str
    deletion_state_machine_arn: str
    delete_inline_parts: int
    delete_inline_seconds: float
    delete_step_parts: int
    delete_step_seconds: float
    schedule_group_name: str
    schedule_function_arn: str
    schedule_role_arn: str
    schedule_dlq_arn: str
    run_index_count: int


def settings() -> Settings:
    """Settings are re-read on each call so tests and the local stack can change them."""
    env = os.environ.get
    return Settings(
        table_name=env("TABLE_NAME", "ksflow"),
        kms_key_id=env("KMS_KEY_ID", ""),
        run_state_machine_arn=env("RUN_STATE_MACHINE_ARN", ""),
        public_api_url=env("PUBLIC_API_URL", "http://localhost:8000").rstrip("/"),
        scheduler_group_name=env("SCHEDULER_GROUP_NAME", "ksflow"),
        scheduler_role_arn=env("SCHEDULER_ROLE_ARN", ""),
        scheduler_dlq_arn=env("SCHEDULER_DLQ_ARN", ""),
        expiry_function_arn=env("EXPIRY_FUNCTION_ARN", ""),
        allow_loopback_runners=_flag("ALLOW_LOOPBACK_RUNNERS"),
        expiry_grace_seconds=int(env("EXPIRY_GRACE_SECONDS", "60")),
        documents_bucket=env("DOCUMENTS_BUCKET", ""),
        ingestion_state_machine_arn=env("INGESTION_STATE_MACHINE_ARN", ""),
        # Deletes remove this much within the API request (29 s at most), and each background step this much.
        deletion_state_machine_arn=env("DELETION_STATE_MACHINE_ARN", ""),
        delete_inline_parts=int(env("DELETE_INLINE_PARTS", "2000")),
        delete_inline_seconds=float(env("DELETE_INLINE_SECONDS", "10")),
        delete_step_parts=int(env("DELETE_STEP_PARTS", "100000")),
        delete_step_seconds=float(env("DELETE_STEP_SECONDS", "60")),
        # The recurring schedules of scheduled definitions, apart from the per-run expiry schedules.
        schedule_group_name=env("SCHEDULE_GROUP_NAME", "ksflow-schedules"),
        schedule_function_arn=env("SCHEDULE_FUNCTION_ARN", ""),
        schedule_role_arn=env("SCHEDULE_ROLE_ARN", ""),
        schedule_dlq_arn=env("SCHEDULE_DLQ_ARN", ""),
        # How many of `runindex.layout.RUN_INDEXES` are deployed (CloudFormation adds one per update).
        run_index_count=int(env("RUN_INDEX_COUNT", "7")),
    )
