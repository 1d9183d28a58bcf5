"""What a newcomer meets first: a light `make run`, and a `make test` that explains its expected failures."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def planned(target: str) -> str:
    """The commands `make` would run for `target` on a fresh clone (-B: as if nothing were built)."""
    return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_make_run_installs_only_runtime_dependencies() -> None:
    commands = planned("run")
    assert '-e ".[local]"' in commands
    assert "dev" not in commands
    assert "--quiet" not in commands


def test_make_test_and_synth_bring_the_development_tools() -> None:
    for target in ("test", "synth"):
        assert '-e ".[local,dev]"' in planned(target), target


def test_the_local_emulator_is_not_a_lambda_dependency() -> None:
    """The Lambda bundle is built from requirements.txt; moto belongs to the local stack only."""
    assert "moto" not in (ROOT / "requirements.txt").read_text()
    assert "moto" not in (ROOT / "requirements-dev.txt").read_text()
    assert "moto[server]" in (ROOT / "requirements-local.txt").read_text()


def test_every_xfail_says_why_and_pytest_prints_it() -> None:
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "-rx" in addopts.split()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.mark.xfail":
                assert any(keyword.arg == "reason" for keyword in node.keywords), f"{path}:{node.lineno}"
