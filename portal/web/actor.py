"""The acting user and tenant of the current request, for domain calls."""
from __future__ import annotations

from flask import g
from flask_login import current_user

from portal.domain.ledger import Actor


def current_actor() -> Actor:
    tenant = g.get("tenant")
    return Actor(current_user.id if current_user.is_authenticated else None,
                 tenant.id if tenant is not None else None)
