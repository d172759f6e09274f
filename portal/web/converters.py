"""URL converters: ``<int:…>`` bounded to what the database columns hold.

An id beyond a 32-bit INTEGER (``/programmes/1000000000000``) made
PostgreSQL raise "integer out of range" (a 500); now such a URL matches no
route and is a plain 404.
"""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app):
    app.url_map.converters["int"] = BoundedIntConverter
