"""One place maps errors to French responses.

* ``DomainError`` (from ``portal.domain.errors``) → its status and message;
* HTTP errors (404, 403, 405, 429, …) → French pages;
* a missing or stale CSRF token → 400 with a French explanation;
* a lost database → 503 "service momentanément indisponible";
* anything else → logged with its traceback, French 500 page, nothing shown.

The format follows the request: JSON under ``/api/``, an alert fragment
(retargeted to ``#messages``) for htmx, a full page otherwise.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.domain.errors import DomainError
from portal.extensions import db, htmx, login_manager
from portal.web import refill

log = logging.getLogger(__name__)

TITLES = {
    400: "Requête invalide",
    401: "Connexion requise",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Méthode non autorisée",
    409: "Action impossible",
    410: "Plus valable",
    413: "Envoi trop volumineux",
    414: "Adresse trop longue",
    422: "Saisie invalide",
    429: "Trop de tentatives",
    500: "Erreur interne",
    503: "Service momentanément indisponible",
}

MESSAGES = {
    400: "La requête n'a pas pu être comprise.",
    401: "Veuillez vous connecter pour accéder à cette page.",
    403: "Vous n'avez pas les droits nécessaires pour cette action.",
    404: "La page demandée n'existe pas ou vous n'y avez pas accès.",
    405: "Cette action n'est pas possible à cette adresse.",
    413: "Le fichier ou le formulaire envoyé est trop volumineux.",
    414: "L'adresse demandée est trop longue (4 096 caractères au plus).",
    429: "Trop de tentatives. Réessayez dans quelques minutes.",
    500: "Une erreur inattendue s'est produite. L'équipe technique a été prévenue.",
    503: "Le service est momentanément indisponible. Réessayez dans quelques instants.",
}


def error_response(status: int, message: str | None = None, code: str | None = None,
                   headers: dict | None = None):
    message = message or MESSAGES.get(status, MESSAGES[400])
    title = TITLES.get(status, TITLES[400])
    if request.path.startswith("/api/"):
        response = jsonify({"message": message, "code": code or str(status)})
        response.status_code = status
    elif htmx:
        response = make_response(
            render_template("errors/_alert.html", title=title, message=message), status)
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template("errors/error.html", status=status, title=title,
                            message=message), status)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _rollback():
    try:
        db.session.rollback()
    except Exception:  # the connection itself may be gone
        log.warning("rollback failed", exc_info=True)


def init_app(app):
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        _rollback()
        headers = {}
        if getattr(error, "retry_after", None):
            headers["Retry-After"] = str(error.retry_after)
        if refill.wants_refill(error):
            # A refused form comes back filled, the message at its field (portal/web/refill.py).
            page = refill.refilled_page(error)
            if page is not None:
                page.headers.update(headers)
                return page
        return error_response(error.status, error.message, error.code, headers)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        _rollback()
        return error_response(
            400, "Le formulaire a expiré ou n'est pas valide (jeton de sécurité "
                 "manquant). Rechargez la page puis recommencez.", "csrf")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        _rollback()
        status = error.code or 500
        headers = {}
        if status == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(status, headers=headers)

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def database_unavailable(error):
        log.error("database unavailable: %s", error.__class__.__name__, exc_info=True)
        _rollback()
        # Render the page as for an anonymous visitor: loading the signed-in
        # user (layout, menus) would hit the lost database again.
        g._login_user = login_manager.anonymous_user()
        return error_response(503, headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def unexpected(error):
        log.exception("unexpected error on %s %s", request.method, request.path)
        _rollback()
        return error_response(500)
