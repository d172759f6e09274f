"""File responses: exports streamed, never built whole in memory."""
from __future__ import annotations

from flask import Response, stream_with_context

from portal.domain import export
from portal.extensions import db


def programme_export(programme, fmt: str) -> Response:
    """Stream the reversibility export of a programme (CSV or JSON)."""
    lines = (export.iter_csv if fmt == "csv" else export.iter_json)(db.session, programme)
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    filename = f"pass-{programme.prefix}-historique.{fmt}"
    return Response(stream_with_context(export.chunked(lines)), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
