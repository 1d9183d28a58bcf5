"""The README's shell blocks, so tests can hold the walkthrough to what it promises."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def section(start: str, end: str) -> str:
    """The README from the heading `start` up to the heading `end`."""
    text = "\n" + README.read_text()
    first = text.index(f"\n{start}\n")
    return text[first:text.index(f"\n{end}\n", first)]


def shell_blocks(text: str) -> list[str]:
    return _SHELL_BLOCK.findall(text)
