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


# Activity is written at most once a minute per session (not on every request).
TOUCH_EVERY_SECONDS = 60


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
    from portal.models import utcnow
    from portal.web import sessions
    auth, now = row.AuthSession, utcnow()
    if sessions.is_expired(auth, now):
        # Inactivity or absolute lifetime reached (issue 13): the row goes,
        # so the cookie is worthless from now on.
        db.session.execute(sa.delete(AuthSession).where(AuthSession.id == auth.id))
        db.session.commit()
        return None
    if (now - auth.last_seen_at).total_seconds() > TOUCH_EVERY_SECONDS:
        db.session.execute(sa.update(AuthSession).where(AuthSession.id == auth.id)
                           .values(last_seen_at=now))
        db.session.commit()
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
