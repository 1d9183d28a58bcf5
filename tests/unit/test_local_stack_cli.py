"""`ksflow local` next to a running stack, and `ksflow admin` next to a stack that is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ksflow.local.stack import free_port

KSFLOW = str(Path(sys.executable).with_name("ksflow"))


def _ksflow(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KSFLOW, *args], cwd=workdir, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def running_stack_files(tmp_path: Path) -> Iterator[dict[Path, str]]:
    local = tmp_path / ".local"
    local.mkdir()
    files = {local / "credentials.json": json.dumps({"api_key": "sk-running"}),
             local / "stack.json": json.dumps({"aws_endpoint_url": "http://127.0.0.1:1", "region": "us-east-1",
                                               "table_name": "ksflow"})}
    for path, text in files.items():
        path.write_text(text)
    yield files


def test_port_in_use_is_one_line_and_leaves_the_running_stack_alone(tmp_path: Path,
                                                                    running_stack_files: dict[Path, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        port = holder.getsockname()[1]
        result = _ksflow(tmp_path, "local", "--port", str(port))
    assert result.returncode != 0
    assert result.stderr == f"port {port} is in use (another ksflow local?); stop it or use --port\n"
    assert {path: path.read_text() for path in running_stack_files} == running_stack_files
    assert sorted((tmp_path / ".local").iterdir()) == sorted(running_stack_files)


def test_admin_against_a_stack_that_is_gone_says_so(tmp_path: Path, running_stack_files: dict[Path, str]) -> None:
    stale = {"aws_endpoint_url": f"http://127.0.0.1:{free_port()}", "region": "us-east-1", "table_name": "ksflow"}
    (tmp_path / ".local" / "stack.json").write_text(json.dumps(stale))
    result = _ksflow(tmp_path, "admin", "create-tenant", "--name", "Acme")
    assert result.returncode != 0
    assert result.stderr == "no local stack is running; start one with make run\n"


def test_api_key_of_the_wrong_form_is_refused(tmp_path: Path) -> None:
    result = _ksflow(tmp_path, "local", "--port", str(free_port()), "--api-key", "sk-short")
    assert result.returncode != 0
    assert "--api-key: expected sk- followed by 32 to 197" in result.stderr
    assert not (tmp_path / ".local").exists()
