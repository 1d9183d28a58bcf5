"""Text extraction per format and chunking, as pure functions on files generated here."""

from __future__ import annotations

import itertools

import pytest

from ksflow.ingestion import chunking, extract
from ksflow.ingestion.extract import ExtractionError, FileFormat
from tests import documents


@pytest.mark.parametrize(("file_name", "content_type", "expected"), [
    ("notes.txt", None, FileFormat.PLAIN_TEXT), ("README.MD", None, FileFormat.MARKDOWN),
    ("table.csv", "application/octet-stream", FileFormat.CSV), ("report.pdf", None, FileFormat.PDF),
    ("letter.docx", None, FileFormat.DOCX), ("no-extension", "application/pdf", FileFormat.PDF),
    ("no-extension", "text/markdown; charset=utf-8", FileFormat.MARKDOWN),
    ("sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None),
    ("image.png", "image/png", None), ("blob", None, None),
])
def test_format_from_extension_then_media_type(file_name: str, content_type: str | None,
                                               expected: FileFormat | None) -> None:
    assert extract.detect(file_name, content_type) == expected


def test_unsupported_type_names_the_type_and_what_is_supported() -> None:
    message = str(extract.unsupported("sheet.xlsx", "application/vnd.ms-excel"))
    assert ".xlsx" in message and "application/vnd.ms-excel" in message and "PDF (.pdf)" in message


def test_plain_text_and_markdown_keep_their_text() -> None:
    assert extract.extract(documents.text(2), FileFormat.PLAIN_TEXT) == documents.SENTENCE * 2
    markdown = extract.extract(documents.markdown(2), FileFormat.MARKDOWN)
    assert markdown.startswith("# Policies") and "## Section 1" in markdown
    assert extract.extract("\ufeffbom".encode(), FileFormat.PLAIN_TEXT) == "bom"


def test_csv_rows_become_lines_of_cells() -> None:
    lines = extract.extract(documents.csv_file(3), FileFormat.CSV).splitlines()
    assert lines == ["id | name | quantity | note", "0 | widget-0 | 0 | fragile, keep dry",
                     "1 | widget-1 | 3 | fragile, keep dry", "2 | widget-2 | 6 | fragile, keep dry"]


def test_pdf_pages_in_order() -> None:
    text = extract.extract(documents.pdf(pages=2), FileFormat.PDF)
    assert text.index("Page 1.") < text.index("Page 2.") and "retention policy" in text


def test_docx_paragraphs_and_tables_in_document_order() -> None:
    text = extract.extract(documents.docx(paragraphs=2), FileFormat.DOCX)
    assert text.splitlines()[:2] == ["Retention policy", "Paragraph 0. " + documents.SENTENCE * 3]
    assert text.endswith("record | years\ninvoice | 7")


@pytest.mark.parametrize(("data", "file_format", "message"), [
    (documents.corrupt_pdf(), FileFormat.PDF, "The PDF could not be read"),
    (b"plain words", FileFormat.PDF, "The PDF could not be read"),
    (b"PK\x03\x04 not really a zip", FileFormat.DOCX, "The DOCX file could not be read"),
    (b"\xff\xfe\x00bad", FileFormat.PLAIN_TEXT, "not valid UTF-8"),
    (b"\xc3\x28", FileFormat.CSV, "The CSV file is not valid UTF-8"),
    (b'a,"b"c\n', FileFormat.CSV, "The CSV file is malformed"),
    (b"  \n\n ", FileFormat.MARKDOWN, "contains no extractable text"),
])
def test_unreadable_files_raise_a_clear_error(data: bytes, file_format: FileFormat, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        extract.extract(data, file_format)


def test_chunks_are_bounded_overlapping_and_cover_the_text() -> None:
    text = extract.extract(documents.markdown(8), FileFormat.MARKDOWN)
    chunks = chunking.split(text)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert 0 < len(chunk.text) <= chunking.CHUNK_SIZE
        assert text[chunk.start:chunk.end] == chunk.text
    for previous, current in itertools.pairwise(chunks):
        assert current.start < previous.end, "consecutive chunks overlap"
        assert previous.end - current.start <= chunking.CHUNK_OVERLAP
        assert current.start > previous.start
        assert text[current.start - 1].isspace(), "a chunk starts at a word"
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())
    assert chunking.split(text) == chunks  # a rerun yields the same chunks


def test_chunks_prefer_paragraph_breaks() -> None:
    paragraphs = ["word " * 120, "more " * 120, "last " * 30]
    chunks = chunking.split("\n\n".join(p.strip() for p in paragraphs))
    assert chunks[0].text == paragraphs[0].strip()


def test_short_text_is_one_chunk_and_a_long_word_is_cut() -> None:
    assert [c.text for c in chunking.split("  just this  ")] == ["just this"]
    chunks = chunking.split("x" * 2500)
    assert [len(c.text) for c in chunks] == [1000, 1000, 800]
    assert chunking.split("") == [] and chunking.split(" \n ") == []
    with pytest.raises(ValueError):
        chunking.split("text", size=100, overlap=60)
