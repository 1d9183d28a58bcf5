"""The local stack and example runners as real processes, as a newcomer would start them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ksflow.local.stack import free_port

KSFLOW = str(Path(sys.executable).with_name("ksflow"))


@dataclass
class Process:
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def _start(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> Process:
    handle = log.open("w")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "POWERTOOLS_"))}
    process = subprocess.Popen([KSFLOW, *args], cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, text=True,
                               env={**environment, **(env or {})})
    return Process(process, log)


def _stop(process: Process) -> None:
    process.process.terminate()
    try:
        process.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.process.kill()


def _wait_http(url: str, process: Process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer:\n{process.output()}")


@dataclass
class LocalStack:
    url: str
    workdir: Path
    credentials: dict[str, str]
    process: Process

    def admin(self, *args: str) -> dict[str, str]:
        result = subprocess.run([KSFLOW, "admin", *args], cwd=self.workdir, capture_output=True, text=True,
                                timeout=60, check=True)
        return dict(json.loads(result.stdout))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("stack")
    port = free_port()
    process = _start(["local", "--port", str(port)], workdir, workdir / "stack.log")
    try:
        _wait_http(f"http://127.0.0.1:{port}/openapi.json", process)
        credentials = json.loads((workdir / ".local" / "credentials.json").read_text())
        yield LocalStack(f"http://127.0.0.1:{port}", workdir, credentials, process)
    finally:
        _stop(process)


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator[Callable[..., str]]:
    runners: list[Process] = []

    def start(secret: str, *extra: str) -> str:
        port = free_port()
        runner = _start(["example-runner", "--port", str(port), "--secret", secret, "--delay", "0.5", *extra],
                        tmp_path, tmp_path / f"runner-{port}.log")
        runners.append(runner)
        deadline = time.monotonic() + 30
        while "listening" not in runner.output():
            if time.monotonic() > deadline or runner.process.poll() is not None:
                raise AssertionError(runner.output())
            time.sleep(0.1)
        return f"http://127.0.0.1:{port}/"

    yield start
    for runner in runners:
        _stop(runner)
