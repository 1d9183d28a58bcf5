"""The README's commands for the local stack are written so that no step can fail silently."""

from __future__ import annotations

import re

from tests.readme import README, section, shell_blocks

LOCAL_PART = section("# ksflow", "## Deploying to AWS")
WALKTHROUGH = section("## Your first workflow run, with curl", "### More users and tenants")


def test_every_curl_fails_on_http_errors_with_the_body() -> None:
    commands = [line for block in shell_blocks(LOCAL_PART) for line in block.splitlines()
                if re.search(r"\bcurl\b", line)]
    assert commands
    for command in commands:
        assert "--fail-with-body" in command, command


def test_the_api_url_comes_from_the_credentials_file() -> None:
    blocks = "\n".join(shell_blocks(LOCAL_PART))
    assert "API_URL=$(jq -r .api_url .local/credentials.json)" in blocks
    commands = [line.partition("#")[0] for line in blocks.splitlines()]
    assert not [command for command in commands if ":8000" in command]


def test_the_prerequisites_name_the_tools_the_walkthrough_uses() -> None:
    prerequisites = section("# ksflow", "## Your first workflow run, with curl")
    assert "`jq`" in prerequisites and "`curl`" in prerequisites


def test_the_polling_loop_is_bounded_and_stops_on_errors() -> None:
    [loop] = [block for block in shell_blocks(WALKTHROUGH) if "while" in block or "for attempt" in block]
    assert "while true" not in loop
    assert re.search(r"for \w+ in \$\(seq \d+\)", loop)
    assert "|| break" in loop


def test_the_walkthrough_documents_callbacks_cancel_and_the_time_limit() -> None:
    text = README.read_text()
    for fact in ('{"status": "COMPLETED"}', '"error"', 'ks DELETE "/v1/workflows/', "60 to 86,400 seconds",
                 "/docs", "/health"):
        assert fact in text, fact


def test_the_readme_runner_is_the_minimal_runner_that_its_tests_run() -> None:
    """The README's complete runner is `ksflow/runner/minimal.py` (without its docstring), which is tested."""
    text = README.read_text()
    section_start = text.index("## Writing your own runner")
    shown = text[text.index("```python\n", section_start) + len("```python\n"):]
    shown = shown[:shown.index("```\n")]
    minimal = (README.parent / "functions" / "ksflow" / "runner" / "minimal.py").read_text()
    assert shown == minimal.split("\n", 1)[1]
    assert len([line for line in shown.splitlines() if line.strip()]) <= 25
