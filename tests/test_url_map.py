"""The whole URL map goes through the tenant gate.

* every endpoint has an access rule (an unregistered route fails here);
* for every tenant route, a user of another tenant of the same kind (with
  the strongest role of that kind) and a user of another kind get 404, for
  every method, and no row changes;
* anonymous visitors are sent to the login page.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.domain import accounts
from portal.domain.permissions import Role, TenantKind, permissions_of, roles_for_kind
from portal.extensions import db
from portal.models import Base, Tenant
from portal.web.gate import access_rule

SAMPLE_VALUES = {"int": "1", "default": "1", "string": "x", "path": "x", "any": "x"}


def _strongest_role(kind: TenantKind) -> Role:
    return max(roles_for_kind(kind), key=lambda r: len(permissions_of(r)))


def _url_for_rule(rule, slug: str) -> str:
    values = {}
    for name in rule.arguments:
        if name == "tenant_slug":
            values[name] = slug
        else:
            converter = rule._converters[name]
            kind = converter.__class__.__name__.lower().replace("converter", "")
            if kind == "any":
                values[name] = converter.regex.strip("()?:").split("|")[0]
            else:
                values[name] = SAMPLE_VALUES.get(kind, "1")
    return rule.build(values, append_unknown=False)[1]


def _row_counts():
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name in ("auth_sessions", "totp_credentials", "recovery_codes"):
            continue
        counts[table.name] = db.session.execute(
            sa.select(sa.func.count()).select_from(table)).scalar()
    return counts


def _tenant_rules(app):
    # Built as a list: a generator would keep the request context pushed
    # (and ``g`` shared) while the caller sends requests.
    with app.test_request_context():
        rules = [(rule, access_rule(rule.endpoint)) for rule in app.url_map.iter_rules()]
    return [(rule, access) for rule, access in rules
            if access is not None and access.tenant_kind is not None]


def test_every_endpoint_has_an_access_rule(app):
    with app.test_request_context():
        missing = [rule.rule for rule in app.url_map.iter_rules()
                   if access_rule(rule.endpoint) is None]
    assert missing == []


def test_tenant_routes_are_numerous_enough_to_mean_something(app):
    kinds = {access.tenant_kind for _rule, access in _tenant_rules(app)}
    assert kinds == set(TenantKind)


@pytest.fixture
def intruders(app):
    """Per kind: an intruder tenant with a user holding the strongest role."""
    with app.app_context():
        users = {}
        for kind in TenantKind:
            tenant = Tenant(kind=kind, slug=f"intrus-{kind.value}", name=f"Intrus {kind.value}")
            db.session.add(tenant)
            db.session.flush()
            email = f"intrus.{kind.value}@example.org"
            user = accounts.create_user(db.session, email, "Intrus", "mot-de-passe-intrus")
            accounts.add_membership(db.session, user, tenant, _strongest_role(kind))
            users[kind] = email
        db.session.commit()
    return users


VICTIMS = {
    TenantKind.METROPOLE: "mgp",
    TenantKind.COMMUNE: "bondy",
    TenantKind.HUB: "francilin",
    TenantKind.MANDATAIRE: "aptic",
    TenantKind.STRUCTURE: "bondy-centre-social",
}


def test_other_tenants_get_404_everywhere_and_change_nothing(app, intruders, browser_factory):
    with app.app_context():
        before = _row_counts()
    checked = 0
    for kind, email in intruders.items():
        same_kind = browser_factory().login(email, "mot-de-passe-intrus")
        other_kind_email = intruders[TenantKind.STRUCTURE if kind is not TenantKind.STRUCTURE
                                     else TenantKind.COMMUNE]
        other_kind = browser_factory().login(other_kind_email, "mot-de-passe-intrus")
        for rule, access in _tenant_rules(app):
            if access.tenant_kind is not kind:
                continue
            url = _url_for_rule(rule, VICTIMS[kind])
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for who in (same_kind, other_kind):
                    if method == "GET":
                        response = who.get(url)
                    else:
                        response = who.client.open(url, method=method,
                                                   data={"csrf_token": who.csrf_token()})
                    assert response.status_code == 404, (who is same_kind, method, url, response.status_code, response.text[response.text.find("<h1>"):response.text.find("<h1>")+300])
                    checked += 1
    assert checked >= 10
    with app.app_context():
        assert _row_counts() == before


def test_anonymous_visitors_are_sent_to_login(app):
    client = app.test_client()
    for rule, access in _tenant_rules(app):
        url = _url_for_rule(rule, VICTIMS[access.tenant_kind])
        if "GET" in rule.methods:
            response = client.get(url)
            assert response.status_code == 302 and "/connexion" in response.location, url
