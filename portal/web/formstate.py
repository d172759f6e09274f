"""Form errors shown next to their field, every value kept (issue 13 forms).

A view runs its parsing and domain call in ``form_errors()``; an
``InvalidInput`` naming a field becomes ``{field: message}`` and the view
re-renders its form (422) with ``errors`` and ``values=request.form``.
Other domain errors go to the one error handler as before.
"""
from __future__ import annotations

from contextlib import contextmanager

from portal.domain.errors import InvalidInput
from portal.extensions import db


class FormErrors(dict):
    pass


@contextmanager
def form_errors():
    errors = FormErrors()
    try:
        yield errors
    except InvalidInput as error:
        db.session.rollback()
        errors[error.field or "_"] = error.message
