"""Splitting extracted text into overlapping chunks.

Chunks hold at most `CHUNK_SIZE` (1,000) characters and repeat the last `CHUNK_OVERLAP` (150)
characters of the previous chunk, so a sentence cut at a boundary is whole in one of them.
A chunk ends at the last paragraph break, else line break, else sentence end, else space in
its second half; only a single word longer than half a chunk is cut mid-word. The split is a
pure function of the text, so a rerun of the same file yields the same chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 150
_BREAKS = ("\n\n", "\n", ". ", " ")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


def _end_of_chunk(text: str, start: int, size: int) -> int:
    limit = start + size
    if limit >= len(text):
        return len(text)
    floor = start + size // 2
    for separator in _BREAKS:
        at = text.rfind(separator, floor, limit)
        if at != -1:
            return at + len(separator)
    return limit


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """Back `overlap` characters from the end, moved forward to the start of a word."""
    candidate = max(end - overlap, start + 1)
    for position in range(candidate, end):
        if text[position].isspace():
            return position + 1
    return candidate


def split(text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    if not 0 <= overlap < size // 2:
        raise ValueError("overlap must be smaller than half the chunk size")
    chunks: list[Chunk] = []
    start = 0
    while start < len(text):
        while start < len(text) and text[start].isspace():
            start += 1
        if start >= len(text):
            break
        end = _end_of_chunk(text, start, size)
        piece = text[start:end].rstrip()
        chunks.append(Chunk(index=len(chunks), text=piece, start=start, end=start + len(piece)))
        if end >= len(text):
            break
        start = _next_start(text, start, end, overlap)
    return chunks
