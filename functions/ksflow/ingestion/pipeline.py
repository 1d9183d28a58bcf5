"""The ingestion state machine's task: read the stored file a range at a time, chunk it, store the chunks.

A file is read in ranges (`ranges`): each invocation reads one, extracting, chunking and storing
as it goes, and returns a cursor; the state machine invokes the task again with it until the
task says the file is done. A small file is one range, so one invocation and one task state;
extracted text never passes between states (their 256 KB limit), only the cursor. CSV and DOCX
files are read whole in one invocation (see `extract`). `last_activity` is `extract_text` as a
range starts and `store_chunks` once it stores its first chunks.

A file that cannot be read is the uploader's problem, not an outage: the task records that
failure itself and returns normally, so function error and execution failure alarms mean
something broke. Anything else raises, and the state machine's Catch records it. Each
invocation first checks that the ingestion is still open and still its own (a cancel or a rerun
may have replaced it) and stops quietly if not; its chunk writes carry the same check
(`store.ChunkWriter`), so an attempt cancelled while storing writes nothing more, whatever the
next attempt is doing, and stops at its next batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.ingestion import chunking, extract, files, ranges, store
from ksflow.ingestion.models import Ingestion
from ksflow.observability import logger, metrics, tracer

_SKIPPED: dict[str, Any] = {"status": "skipped", "chunks": None, "cursor": None}


def _read(ingestion: Ingestion, cursor: ranges.Cursor, writer: store.ChunkWriter,
          seconds_left: Callable[[], float]) -> ranges.Cursor | None:
    """Chunk and store the range at `cursor`; where the next one starts, None when the file is done."""
    file_format = extract.detect(ingestion.file_name, ingestion.content_type)
    if file_format is None:
        raise extract.unsupported(ingestion.file_name, ingestion.content_type)
    if file_format in extract.SPLIT_FORMATS:
        return ranges.read_range(ingestion.object_key, file_format, cursor, ranges.Limits.from_env(), writer.write,
                                 seconds_left)
    if ingestion.size > extract.MAX_WHOLE_FILE_BYTES:
        raise extract.too_large_to_read_whole(file_format, ingestion.size)
    writer.write(chunking.split(extract.extract(files.read(ingestion.object_key), file_format)))
    return None


def ingest(tenant_id: str, document_version_id: str, execution_name: str, cursor: dict[str, Any] | None = None,
           seconds_left: Callable[[], float] = lambda: math.inf) -> dict[str, Any]:
    """One range of the ingestion: `cursor` None for the first."""
    if cursor is None:
        ingestion = store.begin(tenant_id, document_version_id, execution_name)
    else:
        ingestion = store.resume(tenant_id, document_version_id, execution_name)
    if ingestion is None:
        return _SKIPPED
    start = ranges.Cursor.model_validate(cursor or {})
    writer = store.ChunkWriter(ingestion, start.index)
    try:
        following = _read(ingestion, start, writer, seconds_left)
        if following is not None:
            writer.flush()
            return {"status": "continuing", "chunks": None, "cursor": following.model_dump()}
        writer.finish(writer.written)
    except extract.ExtractionError as error:
        if not store.fail(tenant_id, document_version_id, execution_name, str(error)):
            return _SKIPPED
        metrics.add_metric(name="IngestionsFailed", unit="Count", value=1)
        return {"status": "failed", "chunks": None, "cursor": None}
    except store.Superseded:
        return _SKIPPED
    if not store.complete(tenant_id, document_version_id, execution_name, writer.written):
        return _SKIPPED
    if ingestion.chunk_layout < store.CHUNK_LAYOUT and ingestion.attempt > 1:
        store.delete_tenant_partition_chunks(tenant_id, document_version_id)
    metrics.add_metric(name="IngestionsCompleted", unit="Count", value=1)
    metrics.add_metric(name="ChunksProcessed", unit="Count", value=writer.written)
    return {"status": "completed", "chunks": writer.written, "cursor": None}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.thread_safe_append_keys(tenant_id=event["tenant_id"], document_version_id=event["document_version_id"],
                                   correlation_id=event["execution_name"])
    return ingest(event["tenant_id"], event["document_version_id"], event["execution_name"], event.get("cursor"),
                  lambda: context.get_remaining_time_in_millis() / 1000)
