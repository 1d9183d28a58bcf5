"""The one code asset every Lambda function runs from: `functions/ksflow` plus its runtime dependencies.

Dependencies are installed with pip for the Lambda platform (arm64, CPython 3.12, wheels only), so synth
needs neither docker nor a matching local interpreter. The install is cached under `.build/deps/<key>`,
keyed by requirements.txt and the pip target, so repeated synths only re-copy the package code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

# Must match the runtime and architecture the functions are declared with.
PIP_TARGET_ARGS: tuple[str, ...] = (
    "--platform",
    "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--no-compile",
)

_SOURCE_EXCLUDES = ("__pycache__", "*.pyc", "*.egg-info")


def lambda_code(project_root: Path, *, bundle_dependencies: bool) -> lambda_.Code:
    """Code for all functions; without dependencies (fast, offline) when `bundle_dependencies` is false."""
    if not bundle_dependencies:
        return lambda_.Code.from_asset(str(project_root / "functions"), exclude=list(_SOURCE_EXCLUDES))
    return lambda_.Code.from_asset(str(build_bundle(project_root)))


def build_bundle(project_root: Path) -> Path:
    """Assemble `.build/lambda`: cached dependencies plus a fresh copy of the package."""
    build_root = project_root / ".build"
    dependencies = _installed_dependencies(build_root, project_root / "requirements.txt")
    bundle = build_root / "lambda"
    if bundle.exists():
        shutil.rmtree(bundle)
    # Hard links make the copy of the (large, immutable) dependency tree nearly free.
    shutil.copytree(dependencies, bundle, copy_function=_link_or_copy)
    shutil.copytree(
        project_root / "functions" / "ksflow",
        bundle / "ksflow",
        ignore=shutil.ignore_patterns(*_SOURCE_EXCLUDES),
    )
    return bundle


def _cache_key(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update("\0".join(PIP_TARGET_ARGS).encode())
    return digest.hexdigest()[:16]


def _installed_dependencies(build_root: Path, requirements: Path) -> Path:
    cache_root = build_root / "deps"
    target = cache_root / _cache_key(requirements)
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = cache_root / f"{target.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    print(f"Installing Lambda dependencies from {requirements.name} (cache key {target.name})", file=sys.stderr)
    subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PIP_TARGET_ARGS,
            "--target",
            str(staging),
            "-r",
            str(requirements),
        ],
        check=True,
    )
    # Console scripts carry a shebang of the build interpreter; nothing in Lambda runs them.
    shutil.rmtree(staging / "bin", ignore_errors=True)
    # Publish atomically, then drop caches for older requirement sets.
    staging.rename(target)
    for stale in cache_root.iterdir():
        if stale != target and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return target


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
