"""Files of each format the ingestion reads, generated in the test, and helpers to ingest them."""

from __future__ import annotations

import io
from typing import Any

from tests.conftest import call_api, upload, wait_for

SENTENCE = "The retention policy keeps invoices for seven years and contracts for ten. "


def text(sentences: int = 60) -> bytes:
    return (SENTENCE * sentences).encode()


def markdown(sections: int = 4) -> bytes:
    body = "\n\n".join(f"## Section {i}\n\n" + SENTENCE * 12 for i in range(sections))
    return f"# Policies\n\n{body}\n".encode()


def csv_file(rows: int = 80) -> bytes:
    lines = ["id,name,quantity,note"] + [f'{i},widget-{i},{i * 3},"fragile, keep dry"' for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def pdf(pages: int = 2) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.set_font("helvetica", size=11)
    for page in range(pages):
        document.add_page()
        document.multi_cell(0, 6, f"Page {page + 1}. " + SENTENCE * 20)
    return bytes(document.output())


def docx(paragraphs: int = 12) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Retention policy", level=1)
    for i in range(paragraphs):
        document.add_paragraph(f"Paragraph {i}. " + SENTENCE * 3)
    table = document.add_table(rows=2, cols=2)
    for (row, col), value in {(0, 0): "record", (0, 1): "years", (1, 0): "invoice", (1, 1): "7"}.items():
        table.cell(row, col).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def corrupt_pdf() -> bytes:
    return pdf()[:300]


def ingest(parent_id: str, file_name: str, data: bytes, api_key: str, **fields: str) -> dict[str, Any]:
    response = upload("/v1/documents/ingest", file_name, data, api_key, {"path_part_id": parent_id, **fields})
    assert response.status == 201, response.body
    return dict(response.body)


def detail(workflow_id: str, api_key: str) -> dict[str, Any]:
    response = call_api("GET", f"/v1/workflows/document_versions/{workflow_id}", api_key=api_key)
    assert response.status == 200, response.body
    return dict(response.body)


def finished(workflow_id: str, api_key: str, timeout: float = 30) -> dict[str, Any]:
    """The ingestion once it is no longer pending or processing and its execution has ended too
    (the task records the outcome a moment before the execution closes)."""
    def ended() -> dict[str, Any] | None:
        current = detail(workflow_id, api_key)
        done = current["status"] not in ("pending", "processing") and current["execution_status"] != "RUNNING"
        return current if done else None

    return dict(wait_for(ended, timeout=timeout))
