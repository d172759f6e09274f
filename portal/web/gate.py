"""The tenant gate: the one place where access to a URL is decided.

Every endpoint carries an access rule (``Access``):

* ``@public`` — anyone (login page, pass page, health check);
* ``@authenticated`` — any signed-in user (tenant chooser, own account);
* a ``TenantBlueprint`` route — the tenant is in the URL (``/<kind>/<slug>/…``);
  it is resolved once per request; a non-member gets **404** (existence does
  not leak), a member without the route's permission gets **403**;
* an ``ApiBlueprint`` route (``/api/v1/…``) — the tenant (a structure) is
  resolved from the bearer token (``Authorization: Bearer pn_…``); a session
  cookie alone is refused (401), which is why the API may skip CSRF.

An endpoint without a rule is refused (404) and fails the URL-map test.
Views then read ``g.tenant`` / ``g.membership`` (``current_tenant()``) and load
rows through ``portal.web.scoping``.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
import logging

from flask import Blueprint, abort, current_app, g, request
from flask_login import current_user

from portal.domain.permissions import Permission, Role, TenantKind, permissions_of
from portal.extensions import db, login_manager
from portal.models import Membership, Tenant

_gate_log = logging.getLogger("portal.gate")

URL_SEGMENT = {
    TenantKind.METROPOLE: "metropole",
    TenantKind.COMMUNE: "commune",
    TenantKind.HUB: "hub",
    TenantKind.MANDATAIRE: "mandataire",
    TenantKind.STRUCTURE: "structure",
}


@dataclass(frozen=True)
class Access:
    public: bool = False
    tenant_kind: TenantKind | None = None
    permission: Permission | None = None
    api: bool = False


PUBLIC = Access(public=True)
AUTHENTICATED = Access()


def public(view):
    view._access = PUBLIC
    return view


def authenticated(view):
    view._access = AUTHENTICATED
    return view


class TenantBlueprint(Blueprint):
    """A blueprint whose every route belongs to one tenant kind and names
    the permission it needs: ``@bp.route("/", permission=Permission.X)``."""

    def __init__(self, name: str, import_name: str, kind: TenantKind):
        super().__init__(name, import_name,
                         url_prefix=f"/{URL_SEGMENT[kind]}/<tenant_slug>")
        self.kind = kind
        self.url_defaults(self._inject_tenant_slug)

    def _inject_tenant_slug(self, endpoint, values):
        tenant = g.get("tenant")
        if tenant is not None and tenant.kind is self.kind:
            values.setdefault("tenant_slug", tenant.slug)

    def route(self, rule: str, *, permission: Permission, **options):
        if not isinstance(permission, Permission):
            raise TypeError(f"route {rule!r} of {self.name} needs a Permission")
        access = Access(tenant_kind=self.kind, permission=permission)
        parent = super().route

        def decorator(view):
            view._access = access
            return parent(rule, **options)(view)
        return decorator


class ApiBlueprint(Blueprint):
    """A JSON API blueprint: every route names the permission the token's
    structure needs (a token acts with an opérateur agent's permissions)."""

    TOKEN_ROLE = Role.OPERATEUR_AGENT

    def route(self, rule: str, *, permission: Permission | None, **options):
        """``permission=None`` declares a public route (the OpenAPI document)."""
        if permission is None:
            access = PUBLIC
        elif isinstance(permission, Permission):
            access = Access(tenant_kind=TenantKind.STRUCTURE, permission=permission, api=True)
        else:
            raise TypeError(f"route {rule!r} of {self.name} needs a Permission")
        parent = super().route

        def decorator(view):
            view._access = access
            return parent(rule, **options)(view)
        return decorator


def access_rule(endpoint: str) -> Access | None:
    explicit = current_app.extensions["access_rules"].get(endpoint)
    if explicit is not None:
        return explicit
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "_access", None)


def _log_refusal(status: int, reason: str) -> None:
    """Every refusal of the gate is logged (and counted for /metrics)."""
    from portal.observability import metrics
    metrics.GATE_REFUSALS.labels(status=str(status)).inc()
    user_id = current_user.get_id() if current_user else None
    _gate_log.warning("gate refused %s %s: %s", request.method, request.path, reason,
                      extra={"status": status, "endpoint": request.endpoint,
                             "user_id": user_id, "reason": reason})


def _refuse(status: int, reason: str):
    _log_refusal(status, reason)
    abort(status)


def enforce_access():
    """``before_request`` hook: resolve the tenant and check the rule."""
    endpoint = request.endpoint
    if endpoint is None:      # routing failed: Flask answers 404/405 itself
        return None
    rule = access_rule(endpoint)
    if rule is None:
        _refuse(404, "no access rule")
    if rule.public:
        return None
    if rule.api:
        return _enforce_api_access(rule)
    if not current_user.is_authenticated:
        _log_refusal(401, "not signed in")
        return login_manager.unauthorized()
    if rule.tenant_kind is None:
        return None
    slug = (request.view_args or {}).pop("tenant_slug", None)
    membership = load_membership(current_user.id, slug, rule.tenant_kind)
    if membership is None:
        _refuse(404, "not a member of this tenant")
    if rule.permission not in membership.permissions:
        _refuse(403, f"permission {rule.permission.value} missing")
    g.tenant = membership.tenant
    g.membership = membership
    return None


def _enforce_api_access(rule: Access):
    from portal.domain import api_tokens
    from portal.web.errors import error_response
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _log_refusal(401, "API call without a bearer token")
        return error_response(401, "Authentification par jeton requise : en-tête "
                                   "« Authorization: Bearer <jeton> » (les cookies de session "
                                   "ne sont pas acceptés par l'API).",
                              headers={"WWW-Authenticate": 'Bearer realm="pass-numerique"'})
    found = api_tokens.resolve(db.session, token.strip())
    if found is None:
        _log_refusal(401, "unknown or revoked API token")
        return error_response(401, "Jeton d'API inconnu ou révoqué.",
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    api_token_id, structure = found
    if structure.kind is not rule.tenant_kind or not structure.is_operateur:
        _refuse(403, "API token of a structure that is not an opérateur")
    if rule.permission not in permissions_of(ApiBlueprint.TOKEN_ROLE):
        _refuse(403, f"permission {rule.permission.value} missing for API tokens")
    g.tenant = structure
    g.api_token_id = api_token_id
    g.membership = None
    return None


def load_membership(user_id: int, slug: str | None, kind: TenantKind) -> Membership | None:
    if not slug or len(slug) > 80:
        return None
    return db.session.execute(
        sa.select(Membership)
        .join(Tenant, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id, Tenant.slug == slug, Tenant.kind == kind)
        .options(sa.orm.contains_eager(Membership.tenant))
    ).scalar_one_or_none()


def current_tenant() -> Tenant:
    return g.tenant


def has_permission(permission: Permission) -> bool:
    membership = g.get("membership")
    return membership is not None and permission in membership.permissions


def init_app(app):
    app.extensions["access_rules"] = {"static": PUBLIC}
    app.before_request(enforce_access)
    app.jinja_env.globals["has_permission"] = has_permission
