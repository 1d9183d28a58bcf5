"""`ksflow local`: the whole API on localhost, AWS emulated in-process by moto.

State lives in memory and is gone when the process stops, unless a data directory is given
(see `persistence`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ksflow.identity.models import CreatedTenant

if TYPE_CHECKING:
    from ksflow.local.console import LogFormat
    from ksflow.local.persistence import DataDir

LOCAL_DIR = Path(".local")
CREDENTIALS_FILE = LOCAL_DIR / "credentials.json"
STACK_FILE = LOCAL_DIR / "stack.json"
REGION = "us-east-1"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare_environment(moto_port: int) -> None:
    """Point every boto3 client of this process (handlers included) at the moto server."""
    os.environ.update({
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "MOTO_PORT": str(moto_port),
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "ksflow",
    })
    os.environ.pop("AWS_PROFILE", None)


def _quiet_emulator_logs() -> None:
    """moto's request and interpreter logs are emulator noise; the handlers' logs tell the story."""
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def start_moto(port: int) -> Any:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    from ksflow.local import lambda_runtime

    _quiet_emulator_logs()
    lambda_runtime.install()
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def _api_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Imported on first use: the handler reads the environment that is prepared after the port is bound."""
    from ksflow.api.handler import lambda_handler

    response: dict[str, Any] = lambda_handler(event, context)
    return response


def bind_api(host: str, port: int) -> Any:
    """The API's socket, bound before anything is written, so a second stack cannot spoil a running one."""
    from ksflow.local import gateway, lambda_runtime

    try:
        return gateway.make_server(host, port, lambda_runtime.one_at_a_time(_api_handler))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        sys.exit(f"port {port} is in use (another ksflow local?); stop it or use --port")


def _demo_tenant(data: DataDir | None, api_key: str | None) -> CreatedTenant:
    """The demo tenant: the one a data directory remembers, with `api_key` (or a new key) for its OWNER."""
    from ksflow.identity import store as identity
    from ksflow.identity.models import Principal, Role

    remembered = data.demo_tenant() if data else None
    if remembered is None or identity.get_tenant(remembered["tenant_id"]) is None:
        tenant = identity.create_tenant("Demo tenant", "owner@localhost", api_key=api_key)
        if data:
            data.remember_demo_tenant(tenant.model_dump(exclude={"api_key"}))
        return tenant
    if api_key is None or identity.authenticate(api_key) is None:
        owner = Principal(tenant_id=remembered["tenant_id"], user_id=remembered["user_id"], role=Role.OWNER)
        _, api_key = identity.create_api_key(owner, "local stack start", api_key=api_key)
    return CreatedTenant(**remembered, api_key=api_key)


def _write_local_files(api_url: str, tenant: CreatedTenant, table_name: str) -> str:
    """The credentials and the stack file the admin commands find; returns the stack file's text."""
    LOCAL_DIR.mkdir(exist_ok=True)
    credentials = {"api_url": api_url, **tenant.model_dump()}
    CREDENTIALS_FILE.write_text(json.dumps(credentials, indent=2) + "\n")
    CREDENTIALS_FILE.chmod(0o600)
    stack = json.dumps({"aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"], "region": REGION,
                        "table_name": table_name}, indent=2) + "\n"
    STACK_FILE.write_text(stack)
    return stack


def _forget_stack_file(written: str) -> None:
    """At a clean stop the stack file goes, unless another stack has written its own meanwhile."""
    if STACK_FILE.exists() and STACK_FILE.read_text() == written:
        STACK_FILE.unlink()


def serve(host: str = "127.0.0.1", port: int = 8000, moto_port: int | None = None,
          expiry_grace_seconds: int = 5, *, api_key: str | None = None, data_dir: Path | None = None,
          log_format: LogFormat | None = None) -> None:
    """Serve until SIGINT or SIGTERM; with `data_dir`, state is restored at start and saved while running."""
    server = bind_api(host, port)
    moto_port = moto_port or free_port()
    _prepare_environment(moto_port)
    from ksflow.local import console

    console.install(log_format)
    moto = start_moto(moto_port)

    import boto3

    from ksflow.local import persistence, provision, resume, scheduler

    data = persistence.DataDir(data_dir.resolve()) if data_dir else None
    if data:
        data.path.mkdir(parents=True, exist_ok=True)
        data.restore_keys()
    api_url = f"http://localhost:{port}"
    env = provision.provision(allow_loopback_runners=True, public_api_url=api_url,
                              expiry_grace_seconds=expiry_grace_seconds)
    os.environ.update(env)
    table_name, bucket = env["TABLE_NAME"], env["DOCUMENTS_BUCKET"]
    if data:
        data.restore(table_name, bucket)
    tenant = _demo_tenant(data, api_key)
    stack_file = _write_local_files(api_url, tenant, table_name)

    stop = threading.Event()
    scheduler.start(boto3.client("scheduler"), boto3.client("lambda"),
                    [env["SCHEDULER_GROUP_NAME"], env["SCHEDULE_GROUP_NAME"]], stop)
    from ksflow.local import uploads as upload_sweeper

    upload_sweeper.start(stop)
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    resumed = resume.resume_open_work() if data else None
    if data:
        data.keep_saving(table_name, bucket, stop)

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    mode = f"state kept in {data.path}" if data else "state kept in memory and lost on exit"
    print(f"ksflow is serving {api_url} (AWS emulated by moto; {mode})")
    if resumed:
        print(f"Open at the last stop: {len(resumed.redispatched)} run(s) dispatched again, "
              f"{len(resumed.failed)} failed (deadline passed), {len(resumed.ingestions)} ingestion(s) restarted, "
              f"{len(resumed.schedules)} definition schedule(s) recreated")
    print(f"Demo tenant {tenant.tenant_id}: API key {tenant.api_key}")
    print(f"Root folder path part: {tenant.root_path_part_id}; credentials written to {CREDENTIALS_FILE}")
    print(f"Console: {api_url}/console (sign in with the API key above)")
    print("Press Ctrl-C to stop.", flush=True)
    stop.wait()
    server.shutdown()
    if data:
        data.save(table_name, bucket)
    _forget_stack_file(stack_file)
    moto.stop()
    print("ksflow stopped.", flush=True)
