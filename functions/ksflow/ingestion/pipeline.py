"""The ingestion state machine's task: read the stored file, extract its text, chunk it, store the chunks.

One Lambda invocation does all three steps, so an ingestion costs one invocation and one
state transition; `last_activity` is recorded as each step starts. Extracted text can exceed
the 256 KB that Step Functions passes between states, which is another reason not to split
the steps into separate tasks. A file that cannot be read is the uploader's problem, not an
outage: the task records that failure itself and returns normally, so function error and
execution failure alarms mean something broke. Anything else raises, and the state
machine's Catch records it. Before each step the task checks that the ingestion is still
open and still its own (a cancel or a rerun may have replaced it) and stops quietly if not;
its chunk writes carry the same check (`store.replace_chunks`), so an attempt cancelled
while storing writes nothing more, whatever the next attempt is doing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.ingestion import chunking, extract, files, store
from ksflow.ingestion.models import Activity, Ingestion
from ksflow.observability import logger, metrics, tracer


def _text(ingestion: Ingestion) -> str:
    file_format = extract.detect(ingestion.file_name, ingestion.content_type)
    if file_format is None:
        raise extract.unsupported(ingestion.file_name, ingestion.content_type)
    return extract.extract(files.read(ingestion.object_key), file_format)


def ingest(tenant_id: str, document_version_id: str, execution_name: str) -> dict[str, Any]:
    skipped: dict[str, Any] = {"status": "skipped", "chunks": None}
    ingestion = store.begin(tenant_id, document_version_id, execution_name)
    if ingestion is None:
        return skipped
    try:
        text = _text(ingestion)
    except extract.ExtractionError as error:
        if not store.fail(tenant_id, document_version_id, execution_name, str(error)):
            return skipped
        metrics.add_metric(name="IngestionsFailed", unit="Count", value=1)
        return {"status": "failed", "chunks": None}
    if not store.record_activity(tenant_id, document_version_id, execution_name, Activity.CHUNK):
        return skipped
    chunks = chunking.split(text)
    if not store.record_activity(tenant_id, document_version_id, execution_name, Activity.STORE):
        return skipped
    if not store.replace_chunks(ingestion, chunks):
        return skipped
    if not store.complete(tenant_id, document_version_id, execution_name, len(chunks)):
        return skipped
    metrics.add_metric(name="IngestionsCompleted", unit="Count", value=1)
    metrics.add_metric(name="ChunksProcessed", unit="Count", value=len(chunks))
    return {"status": "completed", "chunks": len(chunks)}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.thread_safe_append_keys(tenant_id=event["tenant_id"], document_version_id=event["document_version_id"],
                                   correlation_id=event["execution_name"])
    return ingest(event["tenant_id"], event["document_version_id"], event["execution_name"])
