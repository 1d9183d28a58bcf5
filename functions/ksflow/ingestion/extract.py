"""Text out of an uploaded file, with a library made for each format.

Plain text and Markdown are decoded as UTF-8, CSV is parsed with the standard `csv` module,
PDF pages are read with `pypdf`, and DOCX paragraphs and tables with `python-docx`. Any other
format, or bytes the format's reader refuses, is an `ExtractionError` whose message tells the
user what was wrong; the ingestion fails with it.

Text, Markdown and PDF files of any size are read in pieces (`TextDecoder` block by block,
`open_pdf`/`page_text` page by page; see `ranges`). CSV and DOCX are read whole, in one
invocation, so they are refused above `MAX_WHOLE_FILE_BYTES`: a CSV row and a DOCX paragraph
can only be found by parsing from the start (DOCX is a zip whose XML is parsed whole).
"""

from __future__ import annotations

import codecs
import csv
import io
from enum import StrEnum
from pathlib import PurePosixPath
from typing import IO, Any

# Far above what a CSV/DOCX file or a PDF page yields, unless it is a decompression bomb.
MAX_TEXT_CHARS = 20_000_000
# CSV and DOCX are parsed whole in memory: this keeps one file well inside the function's memory.
MAX_WHOLE_FILE_BYTES = 100 * 1024 * 1024


class FileFormat(StrEnum):
    PLAIN_TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    PDF = "pdf"
    DOCX = "docx"


class ExtractionError(Exception):
    """The file cannot be turned into text; the message is shown to the user as the ingestion's error."""


_SUFFIXES = {
    ".txt": FileFormat.PLAIN_TEXT, ".text": FileFormat.PLAIN_TEXT, ".log": FileFormat.PLAIN_TEXT,
    ".md": FileFormat.MARKDOWN, ".markdown": FileFormat.MARKDOWN,
    ".csv": FileFormat.CSV,
    ".pdf": FileFormat.PDF,
    ".docx": FileFormat.DOCX,
}
_MEDIA_TYPES = {
    "text/plain": FileFormat.PLAIN_TEXT,
    "text/markdown": FileFormat.MARKDOWN, "text/x-markdown": FileFormat.MARKDOWN,
    "text/csv": FileFormat.CSV,
    "application/pdf": FileFormat.PDF,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": FileFormat.DOCX,
}
# Formats read in ranges across invocations, however large the file.
SPLIT_FORMATS = frozenset({FileFormat.PLAIN_TEXT, FileFormat.MARKDOWN, FileFormat.PDF})
SUPPORTED = "plain text (.txt), Markdown (.md), CSV (.csv), PDF (.pdf) and DOCX (.docx)"


def detect(file_name: str, content_type: str | None) -> FileFormat | None:
    """The format named by the file's extension, else by its declared media type; None if unsupported."""
    suffix = PurePosixPath(file_name).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    return _MEDIA_TYPES.get((content_type or "").split(";")[0].strip().lower())


def unsupported(file_name: str, content_type: str | None) -> ExtractionError:
    suffix = PurePosixPath(file_name).suffix.lower() or "no extension"
    return ExtractionError(f"Unsupported file type ({suffix}, {content_type or 'no content type'}) of "
                           f"{file_name!r}: ingestion reads {SUPPORTED}")


def extract(data: bytes, file_format: FileFormat) -> str:
    text = _EXTRACTORS[file_format](data)
    if len(text) > MAX_TEXT_CHARS:
        raise ExtractionError(f"The file holds more than {MAX_TEXT_CHARS} characters of text")
    if not text.strip():
        raise no_text(file_format)
    return text


def no_text(file_format: FileFormat) -> ExtractionError:
    return ExtractionError(f"The {file_format.value} file contains no extractable text")


def too_large_to_read_whole(file_format: FileFormat, size: int) -> ExtractionError:
    return ExtractionError(f"The {file_format.value.upper()} file is {size} bytes; files of this type are read "
                           f"whole, up to {MAX_WHOLE_FILE_BYTES} bytes: split it, or export it as text or PDF")


class TextDecoder:
    """UTF-8 decoded block by block from byte `position` of a file; errors name the byte in the file."""

    def __init__(self, what: str, position: int = 0) -> None:
        # A byte order mark can only open the file.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig" if position == 0 else "utf-8")()
        self.what, self.position = what, position

    @property
    def held(self) -> int:
        """Bytes of a character cut by the block's end, decoded with the next block."""
        return len(self._decoder.getstate()[0])

    def decode(self, block: bytes, *, final: bool) -> str:
        start = self.position - self.held
        try:
            text: str = self._decoder.decode(block, final=final)
        except UnicodeDecodeError as error:
            raise ExtractionError(f"The {self.what} file is not valid UTF-8 (byte {start + error.start}): "
                                  f"{error.reason}") from None
        self.position += len(block)
        return text


def _utf8(data: bytes, what: str) -> str:
    return TextDecoder(what).decode(data, final=True)


def _plain_text(data: bytes) -> str:
    return _utf8(data, "text")


def _markdown(data: bytes) -> str:
    return _utf8(data, "Markdown")


def _csv(data: bytes) -> str:
    """One line per record, cells joined by ` | `, so each chunk keeps whole rows where it can."""
    text = _utf8(data, "CSV")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise ExtractionError(f"The CSV file is malformed: {error}") from None
    return "\n".join(" | ".join(cell.strip() for cell in row) for row in rows if any(cell.strip() for cell in row))


def _unreadable_pdf(error: Exception) -> ExtractionError:
    # pypdf reports broken files with its own errors and with plain Python ones alike.
    return ExtractionError(f"The PDF could not be read: {type(error).__name__}: {error}")


def open_pdf(stream: IO[bytes]) -> tuple[Any, int]:
    """A new reader on the PDF, and its page count. A reader caches every object it parses, so
    each range of pages gets its own."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(stream)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is encrypted with a password")
        return reader, len(reader.pages)
    except ExtractionError:
        raise
    except Exception as error:
        raise _unreadable_pdf(error) from None


def page_text(reader: Any, number: int) -> str:
    """The page's text without surrounding whitespace (pages are joined by a blank line)."""
    try:
        text = str(reader.pages[number].extract_text() or "").strip()
    except Exception as error:
        raise _unreadable_pdf(error) from None
    if len(text) > MAX_TEXT_CHARS:
        raise ExtractionError(f"Page {number + 1} of the PDF holds more than {MAX_TEXT_CHARS} characters of text")
    return text


def _pdf(data: bytes) -> str:
    reader, pages = open_pdf(io.BytesIO(data))
    return "\n\n".join(text for text in (page_text(reader, number) for number in range(pages)) if text)


def _docx(data: bytes) -> str:
    """Paragraphs and tables in document order; table rows become lines of ` | `-joined cells."""
    from docx import Document
    from docx.table import Table

    try:
        document = Document(io.BytesIO(data))
        blocks: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                blocks.extend(" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows)
            elif block.text.strip():
                blocks.append(block.text)
    except Exception as error:
        # Not a zip, not a Word package, or broken XML inside: python-docx and lxml raise all sorts.
        raise ExtractionError(f"The DOCX file could not be read: {type(error).__name__}: {error}") from None
    return "\n".join(blocks)


_EXTRACTORS = {
    FileFormat.PLAIN_TEXT: _plain_text,
    FileFormat.MARKDOWN: _markdown,
    FileFormat.CSV: _csv,
    FileFormat.PDF: _pdf,
    FileFormat.DOCX: _docx,
}
