"""Refuse, before any view or the tenant gate runs, input that no field of
the portal accepts: NUL characters anywhere (URL, query string, form).

PostgreSQL text cannot hold NUL ("cannot contain NUL (0x00) bytes", a 500
before this guard); SQLite would store it silently. Found by the hostile
input tests (tests/test_hostile_input.py).
"""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestURITooLarge

from portal.domain.errors import InvalidInput

# Longest request target (path + query) the portal answers. gunicorn's own
# limit (gunicorn.conf.py: limit_request_line = 8190) is higher, so that a
# long URL reaches this guard and gets the French 414 (JSON under /api)
# instead of gunicorn's English page.
MAX_REQUEST_TARGET = 4096


def _has_nul(values) -> bool:
    return any("\x00" in value for value in values if isinstance(value, str))


def refuse_nul():
    target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or (
        request.full_path)
    if len(target) > MAX_REQUEST_TARGET:
        raise RequestURITooLarge()
    if ("\x00" in request.path
            or _has_nul((request.view_args or {}).values())
            or _has_nul(v for _k, v in request.args.items(multi=True))
            or _has_nul(k for k in request.args.keys())
            or (request.method != "GET" and request.mimetype in (
                "application/x-www-form-urlencoded", "multipart/form-data")
                and (_has_nul(v for _k, v in request.form.items(multi=True))
                     or _has_nul(request.form.keys())))):
        raise InvalidInput("Caractère interdit dans la saisie.")


def init_app(app):
    app.before_request(refuse_nul)
