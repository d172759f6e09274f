"""File responses: exports streamed, never built whole in memory (the
programme export, the largest, is a job: ``portal/web/export_jobs.py``).

``attachment`` is the one way a download response is built: Werkzeug writes
``Content-Disposition`` (quoting, and RFC 5987 ``filename*`` for a name that
is not Latin-1 — gunicorn encodes headers as Latin-1), and a text type gets
its ``charset=utf-8`` once, from Werkzeug.
"""
from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Response

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
JSON = "application/json"


def attachment(body: Any, filename: str, mimetype: str) -> Response:
    """A download named ``filename``; ``mimetype`` without parameters
    (Werkzeug adds ``; charset=utf-8`` to text types itself)."""
    response = Response(body, mimetype=mimetype)
    try:
        filename.encode("ascii")
        names = {"filename": filename}
    except UnicodeEncodeError:      # as werkzeug.utils.send_file does (RFC 5987 / 6266)
        names = {"filename": unicodedata.normalize("NFKD", filename).encode(
                     "ascii", "ignore").decode("ascii"),
                 "filename*": "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")}
    response.headers.set("Content-Disposition", "attachment", **names)
    return response

