"""Cost benchmarks: AWS round trips, state transitions and Lambda invocations per operation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(results: dict[str, Any], path: Path, report: str) -> None:
    """Keep the numbers for later comparison and show the summary."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(report)
    print(f"written to {path}")
