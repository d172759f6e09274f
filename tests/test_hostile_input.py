"""Hostile input: every endpoint of the URL map, with random and hostile
strings in URL parameters, query strings and form fields (valid CSRF token,
signed in as a member of the right tenant), never answers 5xx, and its
error pages are French. Parsers are fuzzed directly too."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from werkzeug.routing.converters import NumberConverter
from hypothesis import strategies as st

from conftest import Browser
from portal.domain.permissions import TenantKind
from portal.web.gate import access_rule

HOSTILE = [
    "", " ", "\x00", "\x00abc", "'; DROP TABLE users; --", "\" OR 1=1 --",
    "<script>alert(1)</script>", "{{ 7*7 }}", "${7*7}", "../../etc/passwd", "%00", "%",
    "9" * 40, "-1", "0", "-0", "+5", "1e308", "NaN", "inf", "0x10", "1_000",
    "２０２１-01-01", "𝟙𝟚𝟛", "٣", "\u202e123", "\u200b", "🙂" * 30, "a" * 5000,
    "2021-02-30", "31/12/9999", "00/00/0000", "0001-01-01", "1-999999999", "5-1", ",,,",
    "1-", "-", "MGP1-000001-01-00", "HTTP://LOCALHOST/P/" + "A" * 200, "é" * 300,
    "\r\nSet-Cookie: x=1", "true", "on", "null", "[]", "{}",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=80),
                         st.integers(-10**15, 10**15).map(str))

# Field names read by the views (templates' and views' names).
FIELDS = sorted("""accord_cadre_ends_on accord_cadre_reference accountant_consulted_on
advance_ceiling agent allow_partial_carnet carnet_count carnet_number code commune_name
confirm_password current_password debut decision direction email ended_on ends_on evidence fee
fin first_carnet given_on holiday_subdivision kind last_carnet mandant_id mandate_id missing
name needs new_end new_password next note partial_last_tranche party pass_count password
payment_reference pentecost_worked programme_id quantity ranges reason received_carnets
reference referent_email referent_name referent_phone request_token revoked_on
scope_contre_paiement scope_distribution serial signatory signed_on starts_on structure_id
summary target_public target_publics verdict full_name role csv_text confirm
siren collectivite address_line postal_code city admin_email siret is_prescripteur is_operateur
commune_id source insee line prefix modele perimeter services telephone site_web horaires
presentation_resume contact_name contact_email contact_phone typologie courriels""".split())
PLAUSIBLE = {name: "1" for name in FIELDS}
QUERY_NAMES = ["debut", "fin", "next", "page", "q", "programme", "format"]

# Signing out would end the test's own session.
SKIPPED_ENDPOINTS = {"auth.logout", "static"}

MEMBERS = {
    TenantKind.METROPOLE: [("mgp.admin", "mgp")],
    TenantKind.COMMUNE: [("referent.bondy", "bondy")],
    TenantKind.HUB: [("hub.admin", "francilin")],
    TenantKind.MANDATAIRE: [("aptic.admin", "aptic")],
    TenantKind.STRUCTURE: [("admin.bondy-mediatheque", "bondy-mediatheque"),
                           ("prescripteur.bondy-centre-social", "bondy-centre-social")],
}
_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Client:
    """A signed-in browser that keeps its CSRF token."""

    def __init__(self, app, email=None):
        self.browser = Browser(app)
        if email:
            self.browser.login(email)
        self.token = self.browser.csrf_token()

    def send(self, method, url, form=None, query=None):
        client = self.browser.client
        if method == "GET":
            response = client.get(url, query_string=query)
        else:
            data = dict(form or {})
            data["csrf_token"] = self.token
            response = client.open(url, method=method, data=data, query_string=query)
        # Read and close it, as a WSGI server does: a file download (an
        # export job's file, served by send_file) keeps its file open until
        # the response is closed.
        response.get_data()
        response.close()
        return response


@pytest.fixture
def clients(app):
    made = {kind: [(Client(app, email), slug) for email, slug in members]
            for kind, members in MEMBERS.items()}
    made[None] = [(Client(app), None)]
    return made


def _routes(app):
    with app.test_request_context():
        rules = [(rule, access_rule(rule.endpoint)) for rule in app.url_map.iter_rules()]
    return [(rule, access) for rule, access in rules
            if access is not None and rule.endpoint not in SKIPPED_ENDPOINTS]


def _url(rule, slug, draw_value):
    values = {}
    for name in rule.arguments:
        if name == "tenant_slug":
            values[name] = slug
            continue
        converter = rule._converters[name]
        kind = converter.__class__.__name__.lower().replace("converter", "")
        if isinstance(converter, NumberConverter):
            values[name] = draw_value("int")
        elif kind == "any":
            values[name] = rule._converters[name].regex.strip("()?:").split("|")[0]
        else:
            values[name] = draw_value("str")
    return rule.build(values, append_unknown=False)[1]


STATUS_SEEN: dict[int, int] = {}


def _assert_sane(response, where):
    STATUS_SEEN[response.status_code] = STATUS_SEEN.get(response.status_code, 0) + 1
    assert response.status_code < 500, (where, response.status_code, response.text[:800])
    if response.status_code >= 400 and response.mimetype == "text/html":
        text = response.text
        assert "Traceback" not in text and "Internal Server Error" not in text, where
        if "<html" in text:
            assert 'lang="fr"' in text, where
        else:  # htmx fragment: an alert, or a scan result announced as one
            assert 'class="alert' in text or 'role="alert"' in text, where
    if response.status_code >= 400 and response.mimetype == "application/json":
        assert response.json.get("message"), where


def _client_for(clients, access, pick=0):
    if access.public:
        return clients[None][0]
    if access.tenant_kind is None:
        return clients[TenantKind.COMMUNE][0]
    members = clients[access.tenant_kind]
    return members[pick % len(members)]


def _methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_every_endpoint_survives_fixed_hostile_payloads(app, clients):
    routes = _routes(app)
    assert len(routes) > 40
    sent = 0
    for payload in ("'; DROP TABLE users; --", "9" * 40, "\x00", "2021-02-30", "é" * 300):
        def value(kind, payload=payload):
            return (10**12 if payload.isdigit() else 1) if kind == "int" else payload
        for n, (rule, access) in enumerate(routes):
            client, slug = _client_for(clients, access, n)
            url = _url(rule, slug, value)
            for method in _methods(rule):
                form = {name: payload for name in FIELDS} if method != "GET" else None
                response = client.send(method, url, form, {q: payload for q in QUERY_NAMES})
                _assert_sane(response, (method, url))
                sent += 1
    assert sent > 200


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_hostile_input_never_breaks_an_endpoint(app, clients, data):
    routes = _routes(app)
    rule, access = data.draw(st.sampled_from(routes), label="route")
    client, slug = _client_for(clients, access, data.draw(st.integers(0, 1)))

    def value(kind):
        if kind == "int":
            return data.draw(st.one_of(st.integers(0, 60), st.integers(0, 2**70)))
        return data.draw(hostile_text.filter(lambda s: s not in ("", ".", "..")))

    url = _url(rule, slug, value)
    method = data.draw(st.sampled_from(_methods(rule)), label="method")
    query = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES), hostile_text, max_size=3))
    form = None
    if method != "GET":
        form = dict(PLAUSIBLE)
        form.update(data.draw(st.dictionaries(st.sampled_from(FIELDS), hostile_text,
                                              min_size=1, max_size=6), label="form"))
    headers_htmx = data.draw(st.booleans())
    if headers_htmx:
        client.browser.client.environ_base["HTTP_HX_REQUEST"] = "true"
    try:
        response = client.send(method, url, form, query)
    finally:
        client.browser.client.environ_base.pop("HTTP_HX_REQUEST", None)
    _assert_sane(response, (method, url, query, form))


# --- Parsers, directly ----------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(text=st.one_of(hostile_text, st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789-/:. ",
                                            max_size=80)))
def test_serial_parser_only_raises_invalid_input(text):
    from portal.domain import keys, serials
    from portal.domain.errors import InvalidInput
    keys.configure("D1:ZGV2LW9ubHktcGFzcy1tYWMta2V5LW51bWJlci1vbmU=", "",
                   "ZGV2LW9ubHktbGVkZ2VyLWhtYWMta2V5")
    try:
        parsed = serials.parse_any(keys.pass_ring(), text)
    except InvalidInput as error:
        assert error.message
        return
    assert parsed is not None


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile_text)
def test_form_helpers_only_raise_invalid_input(app, value):
    from portal.domain.errors import InvalidInput
    from portal.web import forms
    calls = [lambda: forms.text("f", "Champ"), lambda: forms.integer("f", "Nombre", minimum=0,
                                                                      maximum=10**6),
             lambda: forms.date("f", "Date"), lambda: forms.choice("f", "Choix", TenantKind),
             lambda: forms.choice("f", "Choix", ["a", "b"]), lambda: forms.boolean("f"),
             lambda: forms.number_list("f", "Carnets"), lambda: forms.number_ranges("f", "Plages"),
             lambda: forms.query_date("f", "Début", default=None)]
    with app.test_request_context("/", method="POST", data={"f": value},
                                  query_string={"f": value}):
        for call in calls:
            try:
                call()
            except InvalidInput as error:
                assert error.message and error.field == "f"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=hostile_text, second=hostile_text)
def test_pass_lookups_only_raise_domain_errors(db_session, first, second):
    from portal.domain import passcheck
    from portal.domain.errors import DomainError
    for call in (lambda: passcheck.authenticate(db_session, code=first),
                 lambda: passcheck.authenticate(db_session, code=first, verification_code=second),
                 lambda: passcheck.authenticate(db_session, serial=first,
                                                verification_code=second)):
        try:
            call()
        except DomainError as error:
            assert error.message
    db_session.rollback()

