"""Export responses of dashboard tables: CSV streamed, XLSX write-only."""
from __future__ import annotations

from flask import Response, stream_with_context

from portal.domain import tables
from portal.domain.export import chunked

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_response(table: tables.Table, fmt: str) -> Response:
    filename = f"{table.slug}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        return Response(stream_with_context(chunked(tables.iter_csv(table))),
                        mimetype="text/csv; charset=utf-8", headers=headers)
    return Response(tables.to_xlsx(table), mimetype=XLSX, headers=headers)
