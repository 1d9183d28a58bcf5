"""Reading files a range at a time: the chunks are those of one pass, whatever the ranges and blocks."""

from __future__ import annotations

import random
from collections.abc import Iterable

import boto3
import pytest

from ksflow.ingestion import chunking, extract, ranges
from ksflow.ingestion.chunking import Chunk, Splitter
from ksflow.ingestion.extract import ExtractionError, FileFormat
from tests import documents

KEY = "tenants/t/document-versions/v/file"


def _pieces(text: str, sizes: Iterable[int]) -> list[str]:
    pieces, at = [], 0
    for size in sizes:
        pieces.append(text[at:at + size])
        at += size
    return [*pieces, text[at:]]


@pytest.mark.parametrize("seed", range(6))
def test_splitter_fed_in_pieces_makes_the_chunks_of_one_pass(seed: int) -> None:
    chance = random.Random(seed)
    words = ["policy", "keeps", "é", "€uro", "x" * 700, "\n", "\n\n", "  ", "end.", "🙂"]
    text = " ".join(chance.choice(words) for _ in range(2500))
    splitter = Splitter()
    made: list[Chunk] = []
    for piece in _pieces(text, (chance.randint(0, 1500) for _ in range(40))):
        made += splitter.feed(piece)
    assert made + splitter.finish() == chunking.split(text)


def _put(aws_env: dict[str, str], data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=aws_env["DOCUMENTS_BUCKET"], Key=KEY, Body=data)


def _read_all(file_format: FileFormat, limits: ranges.Limits) -> tuple[list[Chunk], list[ranges.Cursor]]:
    """Every range in turn, as the state machine runs them: the chunks and the cursors in between."""
    chunks: list[Chunk] = []
    cursors: list[ranges.Cursor] = []
    cursor: ranges.Cursor | None = ranges.Cursor()
    while cursor is not None:
        cursor = ranges.read_range(KEY, file_format, cursor, limits, chunks.extend, lambda: 900.0)
        if cursor is not None:
            assert chunks[-1].index + 1 == cursor.index, "a range continues the chunk indexes"
            cursors.append(cursor)
    return chunks, cursors


def test_text_ranges_restart_where_the_unfinished_chunk_starts(aws_env: dict[str, str]) -> None:
    # Multi-byte characters everywhere, so block and range ends fall inside characters.
    text = "\ufeff" + "".join(f"Clause {i}: les données « é » restent sept ans 🙂.\n" + ("\n" if i % 7 == 0 else "")
                              for i in range(600))
    _put(aws_env, text.encode())
    chunks, cursors = _read_all(FileFormat.PLAIN_TEXT, ranges.Limits(pages=1, bytes=3000, block_bytes=700))
    assert len(cursors) > 10
    assert chunks == chunking.split(text.removeprefix("\ufeff"))
    data = text.encode()
    for cursor in cursors:  # each range starts on a character, at its chunk's first character
        assert data[cursor.byte:].decode().startswith(chunks[cursor.index].text)


def test_a_range_too_small_for_one_chunk_still_moves_on(aws_env: dict[str, str]) -> None:
    text = ("word " * 3000).strip()
    _put(aws_env, text.encode())
    chunks, cursors = _read_all(FileFormat.MARKDOWN, ranges.Limits(pages=1, bytes=10, block_bytes=64))
    assert chunks == chunking.split(text) and len(cursors) == len(chunks) - 1


def test_invalid_utf8_names_the_byte_in_the_file(aws_env: dict[str, str]) -> None:
    _put(aws_env, b"a" * 5000 + b"\xc3\x28" + b"b" * 100)
    with pytest.raises(ExtractionError, match=r"The text file is not valid UTF-8 \(byte 5000\)"):
        _read_all(FileFormat.PLAIN_TEXT, ranges.Limits(pages=1, bytes=1000, block_bytes=256))


@pytest.mark.parametrize("data", [b"", b" \n\n  \n"])
def test_an_empty_text_file_has_no_text(aws_env: dict[str, str], data: bytes) -> None:
    _put(aws_env, data)
    with pytest.raises(ExtractionError, match="contains no extractable text"):
        _read_all(FileFormat.PLAIN_TEXT, ranges.Limits(pages=1, bytes=1000, block_bytes=256))


def _pdf_with_blank_pages(pages: int) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.set_font("helvetica", size=11)
    for page in range(pages):
        document.add_page()
        if page % 4 != 3:  # every fourth page is blank
            document.multi_cell(0, 6, f"Page {page + 1}. " + documents.SENTENCE * (page % 5 * 7 + 1))
    return bytes(document.output())


@pytest.mark.parametrize("pages_per_range", [1, 2, 5])
def test_pdf_ranges_make_the_chunks_of_the_whole_document(aws_env: dict[str, str], pages_per_range: int) -> None:
    data = _pdf_with_blank_pages(13)
    _put(aws_env, data)
    chunks, cursors = _read_all(FileFormat.PDF, ranges.Limits(pages=pages_per_range, bytes=1, block_bytes=2048))
    assert chunks == chunking.split(extract.extract(data, FileFormat.PDF))
    assert len(cursors) >= 13 // pages_per_range // 2
    assert [c.page for c in cursors] == sorted(c.page for c in cursors)


def test_a_range_ends_early_when_the_invocation_runs_out_of_time(aws_env: dict[str, str]) -> None:
    data = documents.pdf(pages=6)
    _put(aws_env, data)
    chunks: list[Chunk] = []
    limits = ranges.Limits(pages=100, bytes=1, block_bytes=4096)
    cursor = ranges.read_range(KEY, FileFormat.PDF, ranges.Cursor(), limits, chunks.extend, lambda: 30.0)
    assert cursor is not None and cursor.page <= 1, "one page, then the invocation hands over"
    rest = ranges.read_range(KEY, FileFormat.PDF, cursor, limits, chunks.extend, lambda: 900.0)
    assert rest is None and chunks == chunking.split(extract.extract(data, FileFormat.PDF))


def test_a_broken_pdf_is_an_extraction_error(aws_env: dict[str, str]) -> None:
    _put(aws_env, documents.corrupt_pdf())
    with pytest.raises(ExtractionError, match="The PDF could not be read"):
        _read_all(FileFormat.PDF, ranges.Limits(pages=1, bytes=1, block_bytes=128))


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setenv("INGEST_RANGE_PAGES", "3")
        m.setenv("INGEST_RANGE_BYTES", "4096")
        m.setenv("INGEST_BLOCK_BYTES", "512")
        assert ranges.Limits.from_env() == ranges.Limits(pages=3, bytes=4096, block_bytes=512)
