"""`make bench`: ingestion throughput (PDF pages/s, text MB/s) and peak memory, for a small and a larger file.

Each file is ingested by the real task (`pipeline.ingest`), range after range as the state machine
drives it, in a fresh Python process: the Lambda function's side. S3 and DynamoDB are moto, served
over HTTP by this process, so the stored chunks count against moto, not against the measured
process. Its peak memory is the peak of what Python allocated during the ingestion (tracemalloc,
which also slows it a little), with the process's maximum resident set beside it: if extraction
held the file or its chunks, the larger file would show it. Throughput includes the chunk writes
to moto, which is much slower than DynamoDB: it is a floor, and a comparison between the two
sizes, not a forecast for AWS.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import publish
from tests import documents

RESULTS = Path(".bench/ingestion.json")
CASES = [("text", 1), ("text", 4), ("pdf", 50), ("pdf", 200)]  # MB of text; pages of PDF
TABLE, BUCKET = "ksflow-bench", "ksflow-bench-documents"


def _text(megabytes: int) -> bytes:
    paragraph = (documents.SENTENCE * 8).strip() + "\n\n"
    return (paragraph * (megabytes * (1 << 20) // len(paragraph) + 1)).encode()[: megabytes << 20]


def _ingest(endpoint: str, key: str, file_name: str, size: int, results: Any) -> None:
    """In a fresh process: ingest the stored file as the task does, range after range; report time and memory."""
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "TABLE_NAME": TABLE, "DOCUMENTS_BUCKET": BUCKET,
                       "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
                       "POWERTOOLS_TRACE_DISABLED": "true"})
    import resource
    import time
    import tracemalloc

    from ksflow import aws, clock
    from ksflow.ingestion import pipeline, store
    from ksflow.ingestion.models import Ingestion, IngestionStatus

    now = clock.now()
    ingestion = Ingestion(
        tenant_id="bench", document_version_id=key, version_path_part_id=key, document_id=key, lineage=[],
        status=IngestionStatus.PENDING, attempt=1, execution_name=f"bench-{key}", object_key=key,
        file_name=file_name, size=size, created_by="bench", created_at=now, last_run_timestamp=now)
    aws.table(TABLE).put_item(Item={**store.key("bench", key), **ingestion.model_dump(mode="json")})
    tracemalloc.start()
    started, cursor, invocations = time.perf_counter(), None, 0
    while True:
        outcome = pipeline.ingest("bench", key, ingestion.execution_name, cursor)
        invocations += 1
        if outcome["status"] != "continuing":
            break
        cursor = outcome["cursor"]
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    results.put({"status": outcome["status"], "chunks": outcome["chunks"], "seconds": round(seconds, 2),
                 "invocations": invocations, "peak_allocated_mb": round(peak / (1 << 20), 1),
                 "max_resident_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def main() -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from ksflow.local import lambda_runtime

    lambda_runtime.install()  # the local stack's moto fixes, among them transactions that do not copy the table

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench"})  # moto's, not AWS's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb", endpoint_url=endpoint).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    context = multiprocessing.get_context("spawn")
    cases: dict[str, Any] = {}
    try:
        for kind, amount in CASES:
            data = _text(amount) if kind == "text" else documents.pdf(amount)
            key = f"{kind}-{amount}"
            boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=BUCKET, Key=key, Body=data)
            results = context.Queue()
            worker = context.Process(target=_ingest, args=(endpoint, key, f"{key}.{'txt' if kind == 'text' else 'pdf'}",
                                                            len(data), results))
            worker.start()
            measured = results.get(timeout=600)
            worker.join()
            rate = (len(data) / (1 << 20) if kind == "text" else amount) / measured["seconds"]
            cases[key] = {"file_mb": round(len(data) / (1 << 20), 2), **measured,
                          ("mb_per_second" if kind == "text" else "pages_per_second"): round(rate, 2)}
    finally:
        server.stop()
    return {"cases": cases, "notes": "chunk writes go to moto over HTTP; memory is the ingesting process's"}


def report(results: dict[str, Any]) -> str:
    lines = ["Ingestion: throughput and peak memory of the task process, per file"]
    for name, case in results["cases"].items():
        rate = (f"{case['mb_per_second']} MB/s" if "mb_per_second" in case
                else f"{case['pages_per_second']} pages/s")
        lines.append(f"  {name:<9} {case['file_mb']:>7} MB  {case['chunks']:>6} chunks  {case['invocations']} "
                     f"invocation(s)  {case['seconds']:>7} s  {rate:>14}  "
                     f"peak allocated {case['peak_allocated_mb']} MB, max resident {case['max_resident_mb']} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        outcome = main()
    publish(outcome, RESULTS, report(outcome))
