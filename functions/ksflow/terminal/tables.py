"""Readable fixed-width tables and key/value blocks; every value passes through `text.visible`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ksflow.terminal.text import pad, truncate, visible, width

GAP = "  "
# The narrowest the last column is squeezed to when the table is wider than the terminal.
MIN_LAST_WIDTH = 12


@dataclass(frozen=True)
class Column:
    header: str
    max_width: int | None = None  # cells; longer values end in an ellipsis


def table(columns: Sequence[Column], rows: Sequence[Sequence[object]], total_width: int | None = None) -> str:
    """Rows under their headers, columns padded to their widest cell. The last column (the free text:
    an error, a detail) is also cut so that each line fits `total_width` cells, and is not padded."""
    cells = [[truncate(visible(value), column.max_width) if column.max_width else visible(value)
              for column, value in zip(columns, row, strict=True)] for row in rows]
    widths = [max([width(column.header)] + [width(row[index]) for row in cells])
              for index, column in enumerate(columns)]
    if total_width is not None:
        room = total_width - sum(widths[:-1]) - len(GAP) * (len(columns) - 1)
        last = max(room, MIN_LAST_WIDTH)
        if widths[-1] > last:
            widths[-1] = last
            cells = [[*row[:-1], truncate(row[-1], last)] for row in cells]
    lines = [[column.header for column in columns], *cells]
    return "\n".join(GAP.join(pad(cell, cell_width) for cell, cell_width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    """One `Key   value` line per pair, the values aligned."""
    key_width = max((width(key) for key, _ in pairs), default=0)
    return "\n".join(f"{pad(key, key_width)}{GAP}{visible(value)}".rstrip() for key, value in pairs)
