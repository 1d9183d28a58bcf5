"""Splitting extracted text into overlapping chunks.

Chunks hold at most `CHUNK_SIZE` (1,000) characters and repeat the last `CHUNK_OVERLAP` (150)
characters of the previous chunk, so a sentence cut at a boundary is whole in one of them.
A chunk ends at the last paragraph break, else line break, else sentence end, else space in
its second half; only a single word longer than half a chunk is cut mid-word. The split is a
pure function of the text, so a rerun of the same file yields the same chunks.

`Splitter` makes the same split from text fed piece by piece (a block of a file, a PDF page),
holding no more than the unfinished chunk: it decides where a chunk ends only once it holds the
chunk's whole window and one character more, which is all `split` looks at. It can also start
anywhere a chunk starts (`index`, `offset`), which is how a file split across invocations
continues exactly where the previous range left off.
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


class Splitter:
    """`split` over text that arrives in pieces; offsets and indexes count from the whole text's start."""

    def __init__(self, *, index: int = 0, offset: int = 0, size: int = CHUNK_SIZE,
                 overlap: int = CHUNK_OVERLAP) -> None:
        if not 0 <= overlap < size // 2:
            raise ValueError("overlap must be smaller than half the chunk size")
        self.index, self.size, self.overlap = index, size, overlap
        self._buffer, self._base = "", offset

    @property
    def pending(self) -> int:
        """Where the next chunk starts (or would, past any whitespace) in the whole text."""
        return self._base

    @property
    def unfinished(self) -> str:
        """The text held back for the next chunk: what a later range must read again."""
        return self._buffer

    def feed(self, piece: str) -> list[Chunk]:
        self._buffer += piece
        return self._emit(final=False)

    def finish(self) -> list[Chunk]:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> list[Chunk]:
        text, chunks, start = self._buffer, [], 0
        while True:
            while start < len(text) and text[start].isspace():
                start += 1
            if start >= len(text) or (not final and len(text) - start <= self.size):
                break
            end = _end_of_chunk(text, start, self.size)
            piece = text[start:end].rstrip()
            chunks.append(Chunk(index=self.index, text=piece, start=self._base + start,
                                end=self._base + start + len(piece)))
            self.index += 1
            if end >= len(text):
                start = end
                break
            start = _next_start(text, start, end, self.overlap)
        self._buffer, self._base = text[start:], self._base + start
        return chunks


def split(text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    splitter = Splitter(size=size, overlap=overlap)
    return splitter.feed(text) + splitter.finish()
