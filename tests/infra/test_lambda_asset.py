"""The Lambda asset build: dependencies installed once per requirements set, package code copied fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import lambda_asset


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "requirements.txt").write_text("pydantic==2.14.4\n")
    package = tmp_path / "functions" / "ksflow"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "stale.cpython-312.pyc").write_bytes(b"")
    (tmp_path / "functions" / "ksflow.egg-info").mkdir()
    return tmp_path


@pytest.fixture
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_pip(cmd: list[str], check: bool) -> None:
        calls.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)
        (target / "pydantic" / "__init__.py").write_text("")
        (target / "bin").mkdir()
        (target / "bin" / "tool").write_text("#!/some/python\n")

    monkeypatch.setattr(lambda_asset.subprocess, "run", fake_pip)
    return calls


def test_bundle_holds_dependencies_and_the_package(project: Path, pip_calls: list[list[str]]) -> None:
    bundle = lambda_asset.build_bundle(project)
    assert (bundle / "pydantic" / "__init__.py").is_file()
    assert (bundle / "ksflow" / "__init__.py").is_file()
    assert not (bundle / "bin").exists()
    assert not list(bundle.rglob("__pycache__"))
    [cmd] = pip_calls
    assert cmd[cmd.index("--platform") + 1] == "manylinux2014_aarch64"
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    assert {"--only-binary=:all:", "--no-compile"} <= set(cmd)


def test_rebuild_reuses_the_install_and_refreshes_the_code(project: Path, pip_calls: list[list[str]]) -> None:
    lambda_asset.build_bundle(project)
    (project / "functions" / "ksflow" / "added.py").write_text("")
    bundle = lambda_asset.build_bundle(project)
    assert len(pip_calls) == 1
    assert (bundle / "ksflow" / "added.py").is_file()


def test_new_requirements_reinstall_and_drop_the_old_cache(project: Path, pip_calls: list[list[str]]) -> None:
    lambda_asset.build_bundle(project)
    (project / "requirements.txt").write_text("pydantic==2.15.0\n")
    lambda_asset.build_bundle(project)
    assert len(pip_calls) == 2
    assert len(list((project / ".build" / "deps").iterdir())) == 1
