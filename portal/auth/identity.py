"""Flask-Login identity: the cookie holds a sign-in session id, not a user id.

Deleting the ``AuthSession`` row (logout, password change) makes any copy
of the old cookie worthless.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import redirect, request, url_for
from flask_login import UserMixin

from portal.extensions import db, htmx, login_manager
from portal.models import AuthSession, User


class SignedInUser(UserMixin):
    def __init__(self, user: User, session_id: str):
        self.user = user
        self.session_id = session_id

    def get_id(self) -> str:
        return self.session_id

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def full_name(self) -> str:
        return self.user.full_name

    @property
    def email(self) -> str:
        return self.user.email


@login_manager.user_loader
def load_user(session_id: str):
    if not session_id or len(session_id) > 64:
        return None
    row = db.session.execute(
        sa.select(AuthSession, User).join(User, AuthSession.user_id == User.id)
        .where(AuthSession.id == session_id, User.is_active.is_(True))
    ).first()
    if row is None:
        return None
    return SignedInUser(row.User, row.AuthSession.id)


@login_manager.unauthorized_handler
def unauthorized():
    from portal.web.errors import error_response
    if request.path.startswith("/api/"):
        return error_response(401)
    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if htmx:
        response = error_response(401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)
