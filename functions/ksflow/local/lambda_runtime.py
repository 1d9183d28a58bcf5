"""Run moto's Lambda invocations in-process with the real handlers (moto would need docker).

moto's Step Functions interpreter invokes Lambda through moto's Lambda backend, which hands
the event to `LambdaFunction._invoke_lambda`; replacing that one method sends each
invocation to the function's configured handler. Errors come back in Lambda's error shape,
so Retry and Catch in the ASL match on the exception's class name as they do in AWS.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

invocations: Counter[str] = Counter()
_invocations_lock = threading.Lock()


@dataclass
class LocalContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def one_at_a_time(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Serve one event at a time, as a single Lambda execution environment does.

    Handlers keep per-invocation state in module globals (the Powertools resolver's current
    event, the logger's keys), which Lambda never shares between concurrent requests.
    """
    lock = threading.Lock()

    def serialized(event: Any, context: Any) -> Any:
        with lock:
            return handler(event, context)

    return serialized


def call_handler(handler_path: str, event: Any, context: LocalContext) -> Any:
    module_name, _, function_name = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    return handler(event, context)


def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    context = LocalContext(function_name=self.function_name, timeout_seconds=int(self.timeout),
                           memory_limit_in_mb=int(self.memory_size), invoked_function_arn=self.function_arn)
    with _invocations_lock:
        invocations[self.function_name] += 1
    try:
        result = call_handler(str(self.handler), event, context)
    except Exception as error:
        payload = {"errorType": type(error).__name__, "errorMessage": str(error),
                   "stackTrace": traceback.format_exception(error)[-5:]}
        return json.dumps(payload), True, ""
    return json.dumps(result), False, ""


dynamodb_lock = threading.RLock()
_original_call_action = DynamoHandler.call_action


def _serialized_call_action(self: DynamoHandler) -> Any:
    # moto's DynamoDB backend is not thread-safe (transactions lose writes under concurrency);
    # real DynamoDB is, so serializing here only removes an emulator artefact.
    with dynamodb_lock:
        return _original_call_action(self)


_original_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_restoring_touched_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    # moto deep-copies the whole table for every action of a transaction, to roll back a failed one:
    # a transaction cost seconds once the table held a large file's chunks. Keep the items it touches
    # instead (`install` makes a table's deep copy the table itself), and put them back if it fails.
    before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    try:
        for action in transact_items:
            kind, op = next(iter(action.items()))
            table = self.get_table(op["TableName"])
            key = op["Key"] if kind != "Put" else {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name}
            found = self.get_item(op["TableName"], key)
            before.append((op["TableName"], key, found.to_json()["Attributes"] if found else None))
    except Exception:
        before = []  # a malformed request: moto refuses it before changing anything
    try:
        _original_transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, item in reversed(before):
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item)
        raise


_original_query = Table.query


def _query_one_partition(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    # moto answers a Query of the table's own key by sorting every item of the table, so each query
    # cost grew with the table (a large file's chunks, a benchmark's runs). Its items are already
    # grouped by partition: let it see only the queried one, which yields the same answer.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name or hash_key is None or not self.range_key_attr:
        return _original_query(self, hash_key, *args, **kwargs)
    partition = self.items.get(hash_key, {})
    self.all_items = lambda: list(partition.values())  # type: ignore[method-assign]
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


_original_setup_heartbeat = CallbackEndpoint.setup_heartbeat_endpoint


def _setup_heartbeat_after_answer(self: CallbackEndpoint, heartbeat_seconds: int) -> HeartbeatEndpoint:
    # moto sets a task's heartbeat timer up only after the task's Lambda returned, so a token that
    # Lambda answered itself (a dispatch that ended its attempt) was lost to the timer, which then
    # fired; AWS ends such a task with its answer. Pass an answer that came first on to the timer.
    endpoint: HeartbeatEndpoint = _original_setup_heartbeat(self, heartbeat_seconds)
    if self.get_outcome() is not None:
        endpoint.notify()
    return endpoint


_original_get_executions = StepFunctionsParserBackend._get_executions


def _started_executions(self: StepFunctionsParserBackend, execution_status: Any = None) -> list[Any]:
    # moto looks a task token up in every RUNNING execution's worker, and one started a moment ago
    # has no worker environment yet: SendTaskHeartbeat/Success/Failure then raised AttributeError
    # (seen as a failed dispatch while another run was starting). Such an execution holds no token.
    return [execution for execution in _original_get_executions(self, execution_status)
            if execution.exec_worker is not None and execution.exec_worker.env is not None]


def install() -> None:
    """Idempotent; call before any execution or request reaches moto."""
    LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]
    DynamoHandler.call_action = _serialized_call_action  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_restoring_touched_items  # type: ignore[method-assign]
    Table.query = _query_one_partition  # type: ignore[method-assign]
    Table.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]
    CallbackEndpoint.setup_heartbeat_endpoint = _setup_heartbeat_after_answer  # type: ignore[method-assign]
    StepFunctionsParserBackend._get_executions = _started_executions  # type: ignore[method-assign]
