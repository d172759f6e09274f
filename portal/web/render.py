"""Rendering helpers: page or htmx fragment, and redirects htmx understands."""
from __future__ import annotations

from flask import make_response, redirect, render_template
from portal.extensions import htmx


def render(template: str, *, partial: str | None = None, status_code: int = 200, **context):
    """Render the full page, or only ``partial`` when htmx asked for it.

    The response always varies on ``HX-Request`` (see ``after_request`` in
    ``portal.web.headers``), so caches never mix the two.
    """
    name = partial if (partial and htmx) else template
    return make_response(render_template(name, **context), status_code)


def french_redirect(location: str, code: int = 302):
    """``flask.redirect`` for the whole portal (installed as ``app.redirect``):
    Werkzeug's body is English HTML (« Redirecting… »); this one is French."""
    from markupsafe import escape
    from werkzeug.utils import redirect as werkzeug_redirect
    response = werkzeug_redirect(location, code)
    href = escape(response.headers["Location"])
    response.set_data(
        '<!doctype html>\n<html lang="fr">\n<title>Redirection</title>\n'
        f'<h1>Redirection</h1>\n<p>Cette page a changé d\'adresse : <a href="{href}">'
        'continuer</a>.</p>\n</html>\n')
    return response


def redirect_to(url: str):
    """303 for a plain form post, ``HX-Redirect`` for an htmx request."""
    if htmx:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)
