"""Reading a text or PDF file one range at a time, so a file of any size ingests in bounded memory and time.

The ingestion task reads one range per invocation: up to `INGEST_RANGE_PAGES` pages of a PDF,
or `INGEST_RANGE_BYTES` bytes of text, and less when the invocation nears its timeout. Within a
range, text is read in blocks of `INGEST_BLOCK_BYTES` (ranged GETs) and PDF pages one at a time
through a fresh `PdfReader` (pypdf caches every object it parses), and chunks are handed to the
writer as they are made; nothing holds the whole file or all its chunks.

Where a range ends, the chunker holds back the unfinished chunk (less than one chunk of text).
The `Cursor` the task returns points at where that chunk starts: for text, its byte offset in
the file; for a PDF, its page and offset in that page's text. The next range reads again from
there, so chunks straddle range boundaries exactly as they would in one pass: splitting changes
neither the chunks nor their 150-character overlap, and a file split into ranges yields the same
chunks (texts, offsets and indexes) as the same file read whole. A text range therefore starts
where a chunk starts, which the chunker chose at a paragraph break, else a line, sentence or word
break, never inside a UTF-8 character.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from ksflow.ingestion import extract, files
from ksflow.ingestion.chunking import Chunk, Splitter
from ksflow.ingestion.extract import FileFormat

# When less time than this is left, the invocation ends its range at the next page or block.
TIME_RESERVE_SECONDS = 60.0
PAGE_SEPARATOR = "\n\n"
PDF_BLOCKS_KEPT = 8


@dataclass(frozen=True)
class Limits:
    """How much one invocation reads; from the environment, so tests can force tiny ranges."""

    pages: int
    bytes: int
    block_bytes: int

    @classmethod
    def from_env(cls) -> Limits:
        env = os.environ.get
        return cls(pages=int(env("INGEST_RANGE_PAGES", "300")), bytes=int(env("INGEST_RANGE_BYTES", str(64 << 20))),
                   block_bytes=int(env("INGEST_BLOCK_BYTES", str(1 << 20))))


class Cursor(BaseModel):
    """Where the next range starts: the next chunk's index and its offset in the extracted text, and
    where that text is in the file (`byte` for text; `page` and `page_offset` for a PDF)."""

    index: int = 0
    offset: int = 0
    byte: int = 0
    page: int = 0
    page_offset: int = 0


Write = Callable[[Iterable[Chunk]], None]


def read_range(key: str, file_format: FileFormat, cursor: Cursor, limits: Limits, write: Write,
               seconds_left: Callable[[], float]) -> Cursor | None:
    """Chunk one range, handing chunks to `write` as they come; the next range's cursor, None at the end."""
    splitter = Splitter(index=cursor.index, offset=cursor.offset)
    # Text is read front to back, block after block; pypdf comes back to the cross-reference table and objects.
    blocks = files.Blocks(key, limits.block_bytes, keep=PDF_BLOCKS_KEPT if file_format is FileFormat.PDF else 1)
    if file_format is FileFormat.PDF:
        following = _pdf_range(blocks, cursor, limits, splitter, write, seconds_left)
    else:
        following = _text_range(blocks, file_format, cursor, limits, splitter, write, seconds_left)
    if following is not None:
        return following
    write(splitter.finish())
    if splitter.index == 0:
        raise extract.no_text(file_format)
    return None


def _text_range(blocks: files.Blocks, file_format: FileFormat, cursor: Cursor, limits: Limits, splitter: Splitter,
                write: Write, seconds_left: Callable[[], float]) -> Cursor | None:
    what = "Markdown" if file_format is FileFormat.MARKDOWN else "text"
    decoder = extract.TextDecoder(what, cursor.byte)
    position, first_block = cursor.byte, cursor.byte // limits.block_bytes
    # A range starts inside a block; the blocks after it are whole.
    pending = blocks.block(first_block)[cursor.byte - first_block * limits.block_bytes:]
    number = first_block
    while True:
        position += len(pending)
        write(splitter.feed(decoder.decode(pending, final=position >= blocks.size)))
        if position >= blocks.size:
            return None
        if splitter.index > cursor.index and (position - cursor.byte >= limits.bytes
                                              or seconds_left() < TIME_RESERVE_SECONDS):
            unread = decoder.held + len(splitter.unfinished.encode())
            return Cursor(index=splitter.index, offset=splitter.pending, byte=position - unread)
        number += 1
        pending = blocks.block(number)


@dataclass(frozen=True)
class _Piece:
    """A page's share of the extracted text: the separator before it, then its text."""

    page: int
    start: int
    length: int


def _pdf_range(blocks: files.Blocks, cursor: Cursor, limits: Limits, splitter: Splitter, write: Write,
               seconds_left: Callable[[], float]) -> Cursor | None:
    reader, page_count = extract.open_pdf(blocks.seekable())
    pieces: list[_Piece] = []
    start = cursor.offset - cursor.page_offset  # of the cursor's page in the whole text
    # A later range reads its first page again (the unfinished chunk starts there): it is not counted.
    counted_from = cursor.page + (1 if cursor.offset else 0)
    for page in range(cursor.page, page_count):
        text = extract.page_text(reader, page)
        piece = (PAGE_SEPARATOR + text if start > 0 else text) if text else ""
        pieces.append(_Piece(page, start, len(piece)))
        write(splitter.feed(piece[cursor.page_offset:] if page == cursor.page else piece))
        start += len(piece)
        if page + 1 < page_count and splitter.index > cursor.index and (
                page + 1 - counted_from >= limits.pages or seconds_left() < TIME_RESERVE_SECONDS):
            return _resume_at(splitter.pending, pieces, page + 1, start, splitter.index)
    return None


def _resume_at(offset: int, pieces: list[_Piece], next_page: int, next_start: int, index: int) -> Cursor:
    """The cursor at `offset`: on the page whose piece holds it, else at the start of the next page."""
    for piece in reversed(pieces):
        if piece.start <= offset < piece.start + piece.length:
            return Cursor(index=index, offset=offset, page=piece.page, page_offset=offset - piece.start)
    return Cursor(index=index, offset=offset, page=next_page, page_offset=offset - next_start)
