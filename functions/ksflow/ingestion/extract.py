"""Text out of an uploaded file, with a library made for each format.

Plain text and Markdown are decoded as UTF-8, CSV is parsed with the standard `csv` module,
PDF pages are read with `pypdf`, and DOCX paragraphs and tables with `python-docx`. Any other
format, or bytes the format's reader refuses, is an `ExtractionError` whose message tells the
user what was wrong; the ingestion fails with it.
"""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from pathlib import PurePosixPath

# Far above what a file under the upload limit yields, unless it is a decompression bomb.
MAX_TEXT_CHARS = 20_000_000


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
        raise ExtractionError(f"The {file_format.value} file contains no extractable text")
    return text


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExtractionError(f"The {what} file is not valid UTF-8 (byte {error.start}): {error.reason}") from None


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


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ExtractionError:
        raise
    except Exception as error:
        # pypdf reports broken files with its own errors and with plain Python ones alike.
        raise ExtractionError(f"The PDF could not be read: {type(error).__name__}: {error}") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


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
