"""Shared fixtures: moto with executing state machines, the real handlers, API calls as events."""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import urllib3

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "ksflow",
})
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)

from moto import mock_aws  # noqa: E402

from ksflow import aws  # noqa: E402
from ksflow.api.handler import lambda_handler  # noqa: E402
from ksflow.identity import store as identity  # noqa: E402
from ksflow.identity.models import CreatedTenant, Role  # noqa: E402
from ksflow.local import gateway, lambda_runtime, provision  # noqa: E402
from ksflow.local.lambda_runtime import LocalContext  # noqa: E402
from ksflow.runner import example  # noqa: E402
from ksflow.workflows import secrets  # noqa: E402

RUNNER_SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


api_handler = lambda_runtime.one_at_a_time(lambda_handler)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def call_api(method: str, path: str, body: Any = None, api_key: str | None = None,
             headers: dict[str, str] | None = None, raw_body: str | bytes | None = None) -> Response:
    """One HTTP request through the same event shape API Gateway gives the Lambda."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    if api_key:
        all_headers["authorization"] = f"Bearer {api_key}"
    payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else "")
    data = payload.encode() if isinstance(payload, str) else payload
    event = gateway.to_event(method, path, all_headers, data, "127.0.0.1")
    result = api_handler(event, LocalContext(function_name="ksflow-Api", timeout_seconds=30))
    text = result.get("body") or ""
    if result.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return Response(result["statusCode"], json.loads(text) if text else None, result.get("headers") or {})


def upload(path: str, file_name: str, data: bytes, api_key: str, fields: dict[str, str] | None = None,
           content_type: str | None = None) -> Response:
    """A multipart upload as the SDK sends it: the file part with its name and media type, then form fields."""
    media_type = content_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    body, multipart_type = urllib3.encode_multipart_formdata(
        [("file", (file_name, data, media_type)), *(fields or {}).items()])
    return call_api("POST", path, api_key=api_key, headers={"content-type": multipart_type}, raw_body=body)


# One boto3 session for the whole run: moto's data is reset per test, but parsing the AWS
# service models again for every test would cost a third of a second each.
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "core": {"mock_credentials": True, "passthrough": {"urls": [], "services": []}, "service_whitelist": None,
             "reset_boto3_session": False},
}
SESSION = boto3.Session()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto with real state machine execution and Lambda invocations on the real handlers."""
    lambda_runtime.install()
    with mock_aws(config=MOTO_CONFIG):
        identity.clear_auth_cache()
        secrets.decrypt.cache_clear()
        env = provision.provision(SESSION, allow_loopback_runners=True, public_api_url="http://localhost:8000",
                                  expiry_grace_seconds=1)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
        wait_for_executions(env["RUN_STATE_MACHINE_ARN"])
        wait_for_executions(env["INGESTION_STATE_MACHINE_ARN"])
    aws.client.cache_clear()
    aws.table.cache_clear()


def wait_for_executions(machine_arn: str, timeout: float = 30) -> None:
    """Executions run in moto threads that outlive the mock; let them finish inside it."""
    client = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = client.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING")["executions"]
        if not running:
            return
        time.sleep(0.2)
    raise AssertionError("state machine executions still running at the end of the test")


@pytest.fixture
def tenant(aws_env: dict[str, str]) -> CreatedTenant:
    return identity.create_tenant("Acme", "owner@acme.test")


@pytest.fixture
def other_tenant(aws_env: dict[str, str]) -> CreatedTenant:
    return identity.create_tenant("Globex", "owner@globex.test")


@pytest.fixture
def user_key(tenant: CreatedTenant) -> str:
    return identity.create_user(tenant.tenant_id, "user@acme.test", Role.USER).api_key


@pytest.fixture
def knowledge(tenant: CreatedTenant) -> dict[str, str]:
    """A source folder, an output folder, an instructions document and a template document."""
    def create(kind: str, name: str) -> str:
        body: dict[str, Any] = {"name": name, "parent_path_part_id": tenant.root_path_part_id}
        if kind == "documents":
            body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
        response = call_api("POST", f"/v1/{kind}", body, tenant.api_key)
        assert response.status == 201, response.body
        return str(response.body["path_part_id"])

    return {"source": create("folders", "sources"), "output": create("folders", "outputs"),
            "instructions": create("documents", "instructions.md"), "template": create("documents", "template.md")}


def definition_body(knowledge: dict[str, str], runner_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "Summarise", "runner_type": "SELF_HOSTED",
        "runner_config": {"url": runner_url, "webhook_secret": RUNNER_SECRET},
        "source_path_part_ids": [knowledge["source"]], "instruction_path_part_ids": [knowledge["instructions"]],
        "output_path_part_ids": [knowledge["output"]], "template_path_part_id": knowledge["template"],
        "max_run_duration_seconds": 60, **overrides,
    }


@dataclass
class Runner:
    url: str
    received: list[dict[str, Any]]


@pytest.fixture
def runner_factory() -> Iterator[Callable[..., Runner]]:
    """Example runners on free loopback ports; each records the dispatches it verified."""
    servers: list[Any] = []

    def start(*, fail: bool = False, delay: float = 0.2, secret: str = RUNNER_SECRET) -> Runner:
        received: list[dict[str, Any]] = []
        server = example.make_server("127.0.0.1", 0, secret, delay=delay, fail=fail,
                                     log=lambda line: received.append({"log": line}))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return Runner(url=f"http://127.0.0.1:{server.server_address[1]}/", received=received)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def api_server(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The API on a loopback port, so runners can call back; dispatches carry its URL."""
    server = gateway.make_server("127.0.0.1", 0, api_handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("PUBLIC_API_URL", url)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url
    server.shutdown()
    server.server_close()


def shorten_time_limit(tenant: CreatedTenant, definition_id: str, seconds: int) -> None:
    """The API's minimum limit is 60 s; tests shorten the stored definition so as not to wait that long."""
    aws.table(os.environ["TABLE_NAME"]).update_item(
        Key={"pk": f"TENANT#{tenant.tenant_id}", "sk": f"WORKFLOWDEF#{definition_id}"},
        UpdateExpression="SET max_run_duration_seconds = :s", ExpressionAttributeValues={":s": seconds},
    )
