"""Text from the API made safe and measurable for a terminal.

Run errors, progress messages and names are written by runners and users. Printed raw, an escape
sequence could clear the screen, move the cursor or rewrite earlier lines, and a bidi override could
reorder what a reader sees; so every such character is shown as its Python escape instead.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

# Kept raw although in category Cf: the joiner inside emoji sequences like 👩‍💻.
_ZERO_WIDTH_JOINER = "\u200d"
# Control (Cc), format (Cf: bidi overrides, zero-width spaces), surrogate (Cs, a lone one cannot even be
# encoded for output) and line/paragraph separator (Zl, Zp) characters.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES and char != _ZERO_WIDTH_JOINER


def _escape(char: str) -> str:
    code = ord(char)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named:
        return named
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(value: object) -> str:
    """`value` as text in which every control, format or separator character is a visible escape."""
    text = "-" if value is None else str(value)
    return "".join(_escape(char) if _hidden(char) else char for char in text)


def char_width(char: str) -> int:
    """Terminal cells of one character: 0 for combining marks and joiners, 2 for wide (CJK, emoji), else 1.

    A sequence joined by U+200D (a family emoji) is counted as its parts, so it may take a cell or two
    less than counted; alignment after it is off by that much, never broken."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me") or char == _ZERO_WIDTH_JOINER:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    return sum(char_width(char) for char in text)


def truncate(text: str, cells: int) -> str:
    """`text` cut to at most `cells` terminal cells, ending in an ellipsis when cut."""
    if width(text) <= cells:
        return text
    kept, used = [], 0
    for char in text:
        if used + char_width(char) > cells - 1:
            break
        kept.append(char)
        used += char_width(char)
    return "".join(kept) + "…"


def pad(text: str, cells: int) -> str:
    return text + " " * max(0, cells - width(text))


def safe_json(value: Any) -> str:
    """`value` as indented JSON that parses back to the same value, with hidden characters as \\u escapes."""
    # json.dumps escapes the controls below U+0020 inside strings, so a raw newline is the indentation's.
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return "".join(_json_escape(char) if _hidden(char) and char != "\n" else char for char in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON spells characters beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
