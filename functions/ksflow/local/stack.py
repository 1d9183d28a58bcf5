"""`ksflow local`: the whole API on localhost, AWS emulated in-process by moto.

State lives in memory and is gone when the process stops.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

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


def serve(host: str = "127.0.0.1", port: int = 8000, moto_port: int | None = None,
          expiry_grace_seconds: int = 5) -> None:
    moto_port = moto_port or free_port()
    _prepare_environment(moto_port)
    moto = start_moto(moto_port)

    import boto3

    from ksflow.identity import store as identity
    from ksflow.local import gateway, lambda_runtime, provision, scheduler

    api_url = f"http://localhost:{port}"
    env = provision.provision(allow_loopback_runners=True, public_api_url=api_url,
                              expiry_grace_seconds=expiry_grace_seconds)
    os.environ.update(env)
    tenant = identity.create_tenant("Demo tenant", "owner@localhost")
    LOCAL_DIR.mkdir(exist_ok=True)
    credentials = {"api_url": api_url, **tenant.model_dump()}
    CREDENTIALS_FILE.write_text(json.dumps(credentials, indent=2) + "\n")
    CREDENTIALS_FILE.chmod(0o600)
    STACK_FILE.write_text(json.dumps({"aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"], "region": REGION,
                                      "table_name": env["TABLE_NAME"]}, indent=2) + "\n")

    stop = threading.Event()
    scheduler.start(boto3.client("scheduler"), boto3.client("lambda"), env["SCHEDULER_GROUP_NAME"], stop)
    from ksflow.api.handler import lambda_handler

    server = gateway.make_server(host, port, lambda_runtime.one_at_a_time(lambda_handler))
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    print(f"ksflow is serving {api_url} (AWS emulated in memory by moto; state is lost on exit)")
    print(f"Demo tenant {tenant.tenant_id}: API key {tenant.api_key}")
    print(f"Root folder path part: {tenant.root_path_part_id}; credentials written to {CREDENTIALS_FILE}")
    print("Press Ctrl-C to stop.", flush=True)
    stop.wait()
    server.shutdown()
    moto.stop()
    print("ksflow stopped.", flush=True)
