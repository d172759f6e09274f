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
            if access is not None and access.tenant_kind is not None and not access.api]


def _api_rules(app):
    with app.test_request_context():
        rules = [(rule, access_rule(rule.endpoint)) for rule in app.url_map.iter_rules()]
    return [(rule, access) for rule, access in rules if access is not None and access.api]


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


# ------------------------------------------------------------------ JSON API (issue 6)

def _api_call(client, rule, url, method, token=None):
    headers = {"Idempotency-Key": "url-map-test"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.open(url, method=method, headers=headers,
                       json={"code": "x", "reason": "test"})


def test_api_routes_refuse_cookies_foreign_tokens_and_change_nothing(app, intruders,
                                                                      browser_factory):
    """Every API route: a signed-in browser without a token gets 401 (no
    cookie auth, hence no CSRF); a token of a structure that is not an
    opérateur gets 403; a token of another opérateur gets 404 on the
    victim's scans. No row changes."""
    from scan_helpers import hand_out, new_token, qr
    from portal.models import Pass, Scan
    with app.app_context():
        ids = hand_out(db.session, carnets=[950])
        victim = new_token(db.session)
        other = new_token(db.session, "montreuil-mediatheque")
        not_operateur = new_token_for_structure(db.session, "bondy-ccas")
        db.session.commit()
        code = qr(db.session.get(Pass, ids[0]))
    client = app.test_client()
    services = client.get("/api/v1/services",
                          headers={"Authorization": f"Bearer {victim}"}).json["services"]
    created = client.post("/api/v1/scans", json={"code": code, "service_id": services[0]["id"]},
                          headers={"Authorization": f"Bearer {victim}", "Idempotency-Key": "v1"})
    assert created.status_code == 201
    scan_id = created.json["scan"]["id"]
    with app.app_context():
        before = _row_counts()
    signed_in = browser_factory().login("admin.bondy-centre-social")
    checked = 0
    for rule, _access in _api_rules(app):
        url = rule.build({"scan_id": scan_id}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            assert _api_call(signed_in.client, rule, url, method).status_code == 401, url
            assert _api_call(client, rule, url, method, "pn_inconnu").status_code == 401, url
            assert _api_call(client, rule, url, method, not_operateur).status_code == 403, url
            if "scan_id" in rule.arguments:
                response = _api_call(client, rule, url, method, other)
                assert response.status_code == 404, (url, method, response.json)
                assert response.json["message"]
            checked += 1
    assert checked >= 5
    with app.app_context():
        assert _row_counts() == before
        assert db.session.get(Scan, scan_id).cancelled_at is None


def new_token_for_structure(session, slug):
    """A token row for a structure that is not an opérateur (created
    directly: the domain refuses it)."""
    import secrets
    from portal.domain import api_tokens
    from portal.models import ApiToken
    tenant = session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()
    token = api_tokens.PREFIX + secrets.token_urlsafe(16)
    session.add(ApiToken(structure_id=tenant.id, name="x", token_hash=api_tokens.digest(token),
                         hint=token[:10]))
    return token
