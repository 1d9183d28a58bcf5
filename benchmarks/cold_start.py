"""`make bench`: the API function's cold start, against a bare Powertools resolver with boto3 and pydantic.

Each sample is a fresh Python process that imports one side, as a Lambda cold start does, and reports the
CPU time of that import (interpreter start-up, the same for both, is left out). CPU time rather than wall
time: an import is CPU-bound once files are cached, and on a shared machine wall time mostly measures the
neighbours. The sides alternate, and the ratio is of their medians. The processes get Lambda's environment
markers, so libraries take their Lambda code paths (the X-Ray SDK builds no sampling client there), and the
API function's POWERTOOLS_* settings.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import publish

RESULTS = Path(".bench/cold_start.json")
SAMPLES = 15
TARGET_RATIO = 1.5

SIDES = {
    "bare_resolver": (
        "import boto3, pydantic\n"
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
        "APIGatewayHttpResolver(enable_validation=True)\n"
    ),
    "api_handler": "import ksflow.api.handler\n",
}
# Runs `argv[1]` and prints the CPU seconds it took.
TIMED = "import sys, time\nstart = time.process_time()\nexec(sys.argv[1])\nprint(time.process_time() - start)\n"


def lambda_environment(task_root: str) -> dict[str, str]:
    # Bytecode may be written: the warm-up run caches it for both sides alike, so neither is timed compiling.
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("POWERTOOLS_") and name != "PYTHONDONTWRITEBYTECODE"}
    environment.update({
        "LAMBDA_TASK_ROOT": task_root, "AWS_LAMBDA_FUNCTION_NAME": "ksflow-bench-Api",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "ksflow-bench", "POWERTOOLS_METRICS_NAMESPACE": "ksflow/bench",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    })
    return environment


def import_seconds(code: str, environment: dict[str, str]) -> float:
    result = subprocess.run(  # noqa: S603 - this interpreter, with code from SIDES
        [sys.executable, "-c", TIMED, code], env=environment, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as task_root:
        environment = lambda_environment(task_root)
        for code in SIDES.values():
            import_seconds(code, environment)  # compiled bytecode cached for both, as in any later start
        samples: dict[str, list[float]] = {side: [] for side in SIDES}
        for _ in range(SAMPLES):
            for side, code in SIDES.items():
                samples[side].append(import_seconds(code, environment))
    medians = {side: statistics.median(values) for side, values in samples.items()}
    return {
        "samples": {side: [round(v, 4) for v in values] for side, values in samples.items()},
        "median_seconds": {side: round(m, 4) for side, m in medians.items()},
        "ratio": round(medians["api_handler"] / medians["bare_resolver"], 3),
        "target_ratio": TARGET_RATIO,
    }


def report(results: dict[str, Any]) -> str:
    medians = results["median_seconds"]
    return (f"cold start, import CPU time (median of {SAMPLES} fresh processes): API handler "
            f"{medians['api_handler']:.3f} s, bare resolver {medians['bare_resolver']:.3f} s: ratio {results['ratio']} "
            f"(target {results['target_ratio']})")


if __name__ == "__main__":
    outcome = main()
    publish(outcome, RESULTS, report(outcome))
