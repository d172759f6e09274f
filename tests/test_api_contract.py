"""Issue 14, item 17: the JSON API keeps its published contract.

A contract test generated from ``/api/v1/openapi.json`` (schemathesis):
requests built from the document's schemas, with and without a token, and
every answer checked against it (documented status, JSON body of the
documented schema, no server error). Plus the regressions found by hand:
unbounded integer parameters (500), parameters silently clamped, a body the
schema accepts refused with a wrong message, gunicorn's English 414."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from portal.api.openapi import document
from portal.extensions import db
from scan_helpers import hand_out, new_token


@pytest.fixture
def token(app):
    with app.app_context():
        hand_out(db.session, carnets=[941])
        value = new_token(db.session)
        db.session.commit()
    return value


# The published document (the same dict /api/v1/openapi.json serves, checked
# below); each test points it at its own app.
contract = schemathesis.openapi.from_dict(document())


def test_the_contract_is_the_served_document(app):
    served = app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.json == document()


# Structural refusals (type, range, length, forbidden character): a request
# the schema accepts must never get one — the schema and the validation say
# the same thing. A 422 for a domain reason (unknown agent, unreadable code,
# forged pass) remains a valid answer to a schema-valid request, so
# schemathesis' generic ``positive_data_acceptance`` is replaced by this one.
STRUCTURAL = ("doit être", "Champ inconnu", "Corps JSON attendu", "Paramètre", "interdit")


def schema_and_validation_agree(ctx, response, case):
    meta = case.meta
    if (meta is not None and meta.generation.mode.is_positive and response.status_code == 422
            and any(word in response.json().get("message", "") for word in STRUCTURAL)):
        raise AssertionError(f"schema-valid request refused as malformed: "
                             f"{response.json()['message']!r} for {case.body!r} {case.query!r}")
    return None


def test_every_answer_matches_the_published_document(app, token):
    """For each operation, bounded examples generated from its schemas
    (hypothesis through schemathesis' strategies; no pytest plugin, whose
    collection alone took minutes), each answer checked: documented status,
    content type and headers, JSON body of the documented schema, no server
    error, and schema-valid requests never refused as malformed."""
    contract.app = app                      # requests go to this test's app (WSGI)
    checked = []
    for result in contract.get_all_operations():
        operation = result.ok()

        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(
                app=app, headers={**(case.headers or {}), "Authorization": f"Bearer {token}"},
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
                additional_checks=[schema_and_validation_agree])
            checked.append(operation.label)
        run()
    assert {label.split(" ", 1)[1] for label in checked} == {
        "/pass/test", "/scans", "/services", "/scans/{scan_id}", "/scans/{scan_id}/annulation"}


def test_every_operation_answers_401_without_a_token_as_documented(app):
    client = app.test_client()
    for path, item in document()["paths"].items():
        url = "/api/v1" + path.replace("{scan_id}", "1")
        for method, operation in item.items():
            response = client.open(url, method=method.upper(), json={})
            assert response.status_code == 401 and "401" in operation["responses"], (method, path)
            assert response.is_json and response.json["message"]


def test_every_operation_documents_401_413_414_422_and_503():
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            assert {"401", "413", "414", "422", "503"} <= set(operation["responses"]), \
                (method, path)
    throttled = document()["paths"]["/scans"]["post"]["responses"]
    assert "429" in throttled


def _get(app, token, query):
    return app.test_client().get(f"/api/v1/scans?{query}",
                                 headers={"Authorization": f"Bearer {token}"})


INVALID_QUERIES = ["avant=9223372036854775808", "avant=-99999999999999999999999", "avant=0",
                   "avant=abc", "limite=0", "limite=201", "limite=9999999999999999999999",
                   "limite=", "avant=1.5", "limite=50&limite=60", "inconnu=1", "avant=%C2%B2"]


def test_invalid_query_parameters_are_refused_with_422(app, token):
    for query in INVALID_QUERIES:
        response = _get(app, token, query)
        assert response.status_code == 422, (query, response.text)
        message = response.json["message"]
        assert "invalide" in message or "inconnu" in message, (query, message)


def test_valid_query_parameters_are_honoured(app, token):
    response = _get(app, token, "avant=9223372036854775807&limite=200")
    assert response.status_code == 200 and response.json["scans"] == []


def test_schema_and_validation_agree_on_service_id(app, token):
    schema = document()["components"]["schemas"]["DemandeScan"]["properties"]["service_id"]
    assert schema["minimum"] == 1
    response = app.test_client().post("/api/v1/pass/test", json={"code": "x", "service_id": 0},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert "de 1 à" in response.json["message"]


def test_a_long_url_gets_a_french_414_json_under_the_api(app, token):
    response = _get(app, token, "avant=1&x=" + "a" * 5000)
    assert response.status_code == 414
    assert response.is_json and "trop longue" in response.json["message"]
    page = app.test_client().get("/connexion?x=" + "a" * 5000)
    assert page.status_code == 414 and "trop longue" in page.text and "<html" in page.text


def test_gunicorn_lets_the_portal_answer_long_urls():
    import pathlib
    import runpy
    conf = runpy.run_path(str(pathlib.Path(__file__).resolve().parent.parent
                              / "gunicorn.conf.py"))
    from portal.web.input_guard import MAX_REQUEST_TARGET
    assert conf["limit_request_line"] > MAX_REQUEST_TARGET + len("GET  HTTP/1.1")
