"""The README's walkthrough, run as written against a local stack and the example runner."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.e2e.conftest import LocalStack
from tests.readme import section, shell_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("jq") is None, reason="the walkthrough needs jq")]

README_RUNNER_URL = "http://127.0.0.1:8001/"
STARTED_BY_THE_TEST = ("make run", ".venv/bin/ksflow example-runner")


def test_the_walkthrough_completes_a_run_cancels_one_and_uploads(local_stack: LocalStack,
                                                                  start_runner: Callable[..., str]) -> None:
    # A runner slow enough that the walkthrough's cancel comes before its callback.
    runner_url = start_runner("my-webhook-secret", "--delay", "4")
    walkthrough = [block for block in shell_blocks(section("## Your first workflow run, with curl",
                                                           "### More users and tenants"))
                   if not block.startswith(STARTED_BY_THE_TEST)]
    upload, duplicate_upload, new_version = shell_blocks(section("## Uploads and ingestion",
                                                                 "### Files of any size: direct uploads"))
    script = "\n".join(["set -eo pipefail", *walkthrough, upload,
                        "set +e", duplicate_upload, 'echo "duplicate upload exit $?"', "set -e",
                        new_version]).replace(README_RUNNER_URL, runner_url)
    done = subprocess.run(["bash", "-c", script], cwd=local_stack.workdir, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Status: COMPLETED" in done.stdout, done.stdout + done.stderr
    assert '"status": "FAILED",\n  "error": "Run was cancelled"' in done.stdout
    assert '{"status":"PENDING","attempt":2,"attempts":[{"attempt":1,"status":"FAILED","error":"Run was cancelled"' \
        in done.stdout
    assert '{"status":"FAILED","error":"Stopped by user","attempt":2}' in done.stdout
    assert "attempt 1: created" in done.stdout and "attempt 1: failed stopped" in done.stdout
    assert "attempt 2: retried" in done.stdout and "attempt 2: failed stopped" in done.stdout
    assert "duplicate upload exit 1" in done.stdout
    assert "already exists in this folder; to upload a new version of it, use POST /v1/documents/" in done.stderr

