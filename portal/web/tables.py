"""Export responses of dashboard tables: CSV streamed, XLSX write-only."""
from __future__ import annotations

from flask import Response, stream_with_context

from portal.domain import tables
from portal.domain.export import chunked
from portal.web.downloads import CSV, XLSX, attachment


def table_response(table: tables.Table, fmt: str) -> Response:
    filename = f"{table.slug}.{fmt}"
    if fmt == "csv":
        return attachment(stream_with_context(chunked(tables.iter_csv(table))), filename, CSV)
    return attachment(tables.to_xlsx(table), filename, XLSX)
