"""Issue 12: a pass is consumed or described only when its secret is shown.

The serial and its ISO 7064 check digits are public (carnet numbers are
sequential), so a serial alone proves nothing. Every way in — API test and
scan, web test and validate, photo, offline sync, the QR page ``/P/…`` and
``/verifier`` — is tried with a bare serial, the serial with ANOTHER pass's QR
tag, the serial with another pass's verification code, and the genuine pass.
Only the genuine one is accepted; the others get a French message, count
toward throttling and write nothing. ``passcheck.authenticate`` is the one
place that decides it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from portal.domain import keys, serials
from portal.extensions import db
from portal.models import (Anomaly, AnomalyKind, IdempotencyRecord, LedgerEntry, Pass, PassState,
                           Scan)
from scan_helpers import OPERATEUR, hand_out, new_token, qr, structure, verification_code

SCAN = f"/structure/{OPERATEUR}/scan"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def passes(app):
    """Two handed-out pass of the Bondy CCAS: the target and another one
    whose secrets an attacker might reuse."""
    with app.app_context():
        ids = hand_out(db.session, carnets=[931])
        target, other = db.session.get(Pass, ids[0]), db.session.get(Pass, ids[1])
        from portal.domain import operateurs
        service = operateurs.active_services(db.session, structure(db.session).id)[0].id
        return {"service_id": service, "serial": target.serial, "qr": qr(target), "code": verification_code(target),
                "id": target.id, "other_qr": qr(other), "other_code": verification_code(other)}


def forgeries(p: dict) -> dict[str, dict]:
    """What a careless user or an attacker sends for pass ``p``."""
    other_tag = p["other_qr"].rsplit("-", 1)[1]
    return {
        "numéro seul (champ code)": {"code": p["serial"]},
        "numéro seul (champ numéro)": {"serial": p["serial"]},
        "numéro + étiquette QR d'un autre pass": {"code": f"HTTP://LOCALHOST/P/{p['serial']}-{other_tag}"},
        "numéro + code de vérification d'un autre pass": {"serial": p["serial"],
                                                          "verification_code": p["other_code"]},
        "numéro (champ code) + mauvais code": {"code": p["serial"],
                                               "verification_code": p["other_code"]},
    }


def genuine(p: dict) -> list[dict]:
    return [{"code": p["qr"]}, {"serial": p["serial"], "verification_code": p["code"]}]


def written(app) -> tuple:
    """Everything a scan could write."""
    with app.app_context():
        count = lambda model: db.session.execute(  # noqa: E731
            sa.select(sa.func.count()).select_from(model)).scalar()
        states = tuple(db.session.execute(sa.select(Pass.state).order_by(Pass.id)
                                          .where(Pass.state != PassState.EMIS)).scalars())
        return (count(Scan), count(IdempotencyRecord), count(LedgerEntry), count(Anomaly), states)


@pytest.fixture
def failures(app, monkeypatch):
    """Calls to the throttles' ``failure`` (scan page/API and public pages)."""
    seen: list[dict] = []
    for name in ("scan_throttle", "throttle"):
        throttle = app.extensions[name]
        original = throttle.failure

        def spy(original=original, **keys):
            seen.append(keys)
            return original(**keys)
        monkeypatch.setattr(throttle, "failure", spy)
    return seen


def _french(text: str) -> bool:
    return any(word in text for word in ("code de vérification", "Code non reconnu", "incorrect",
                                         "falsifié"))


# ------------------------------------------------------------------ API

@pytest.mark.parametrize("route", ["/api/v1/pass/test", "/api/v1/scans"])
def test_api_accepts_only_the_genuine_pass(app, passes, failures, route):
    with app.app_context():
        token = new_token(db.session)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    before = written(app)
    for n, (label, body) in enumerate(forgeries(passes).items()):
        response = client.post(route, json={**body, "service_id": passes["service_id"]},
                               headers={**headers, "Idempotency-Key": f"f{n}"})
        assert response.status_code == 422, label
        assert _french(response.json["message"]), (label, response.json)
        assert "Pass valable" not in response.get_data(as_text=True)
    bare = client.post(route, json={"code": passes["serial"]},
                       headers={**headers, "Idempotency-Key": "bare"})
    assert bare.json["code"] == "code_requis"
    assert "code de vérification" in bare.json["message"]
    assert len(failures) == len(forgeries(passes)) + 1
    assert written(app) == before, "a refused pass wrote something"
    # The genuine pass: by its QR, then (test only) by serial + code.
    response = client.post(route, json={**genuine(passes)[0], "service_id": passes["service_id"]},
                           headers={**headers, "Idempotency-Key": "ok"})
    assert response.status_code == (201 if route.endswith("scans") else 200)
    if route.endswith("test"):
        response = client.post(route, json=genuine(passes)[1], headers=headers)
        assert response.status_code == 200 and response.json["valid"] is True
    else:
        with app.app_context():
            assert db.session.get(Pass, passes["id"]).state is PassState.SCANNE


# ------------------------------------------------------------------ web scan page

@pytest.mark.parametrize("action", ["tester", "valider", "hors_ligne"])
def test_scan_page_accepts_only_the_genuine_pass(app, browser, passes, failures, action):
    browser.login(f"operateur.{OPERATEUR}")
    url = f"{SCAN}/{'tester' if action == 'tester' else 'valider'}"
    extra = {}
    if action == "hors_ligne":   # the offline queue replays the form with its date
        extra["occurred_at"] = (dt.datetime.now(dt.timezone.utc)
                                - dt.timedelta(hours=1)).isoformat()
    before = written(app)
    for n, (label, form) in enumerate(forgeries(passes).items()):
        response = browser.post(url, {**form, **extra, "idempotency_key": f"w{n}",
                                      "service_id": passes["service_id"]}, headers=HTMX)
        assert response.status_code == 422, label
        assert "scan-ko" in response.text and _french(response.text), label
        assert "Pass valable" not in response.text and "Pass validé" not in response.text
    assert len(failures) == len(forgeries(passes))
    assert written(app) == before
    response = browser.post(url, {**genuine(passes)[1], **extra, "idempotency_key": "ok",
                                  "service_id": passes["service_id"]},
                            headers=HTMX)
    assert response.status_code in (200, 201)
    assert ("Pass valable" if action == "tester" else "Pass validé") in response.text


def _photo(text: str) -> tuple:
    import qrcode
    buffer = io.BytesIO()
    qrcode.make(text).save(buffer, format="PNG")
    return (io.BytesIO(buffer.getvalue()), "qr.png")


def test_photo_accepts_only_the_genuine_pass(app, browser, passes, failures):
    """A photo carries only a QR code: a printed serial, or the serial with
    another pass's tag, is refused; the genuine QR is accepted."""
    browser.login(f"operateur.{OPERATEUR}")
    other_tag = passes["other_qr"].rsplit("-", 1)[1]
    before = written(app)
    for text in (passes["serial"], f"HTTP://LOCALHOST/P/{passes['serial']}-{other_tag}"):
        for action in ("tester", "valider"):
            response = browser.post(f"{SCAN}/photo", {"photo": _photo(text), "action": action,
                                                      "service_id": passes["service_id"]},
                                    content_type="multipart/form-data", headers=HTMX)
            assert response.status_code == 422 and _french(response.text), (text, action)
    assert len(failures) == 4
    assert written(app) == before
    response = browser.post(f"{SCAN}/photo", {"photo": _photo(passes["qr"]), "action": "valider",
                                              "service_id": passes["service_id"]},
                            content_type="multipart/form-data", headers=HTMX)
    assert response.status_code in (200, 201) and "Pass validé" in response.text


# ------------------------------------------------------------------ public pages

def _strip(text: str) -> str:
    """A page without what legitimately differs between two requests."""
    text = re.sub(r'name="csrf_token" value="[^"]*"', "", text)
    text = re.sub(r'content="[^"]*" name="csrf-token"|name="csrf-token" content="[^"]*"', "", text)
    text = re.sub(r'"X-CSRFToken": "[^"]*"', "", text)
    return re.sub(r"[A-Z0-9]{2,6}-\d{7}-\d{2}-\d{2}", "SERIAL", text)


def test_pass_page_needs_the_qr_tag_and_reveals_nothing_without_it(app, browser, passes,
                                                                   failures):
    client = browser
    other_tag = passes["other_qr"].rsplit("-", 1)[1]
    with app.app_context():
        emis = db.session.execute(sa.select(Pass).where(Pass.state == PassState.EMIS)
                                  .order_by(Pass.id)).scalars().first().serial
    never_issued = serials.make_serial("MGP2", 9_999_998, 1).canonical
    bare = client.get(f"/P/{passes['serial']}")
    assert bare.status_code == 422
    assert "code de vérification" in bare.text and f'value="{passes["serial"]}"' in bare.text
    assert "Pass valable" not in bare.text and "pas encore remis" not in bare.text
    # The same answer whatever the pass's state, or whether it exists at all.
    for serial in (emis, never_issued):
        other = client.get(f"/P/{serial}")
        assert other.status_code == 422 and _strip(other.text) == _strip(bare.text), serial
    wrong_tag = client.get(f"/P/{passes['serial']}-{other_tag}")
    assert wrong_tag.status_code == 422 and "Code non reconnu" in wrong_tag.text
    assert "Pass valable" not in wrong_tag.text
    assert len(failures) == 4
    ok = client.get(passes["qr"].split("HTTP://LOCALHOST", 1)[1])
    assert ok.status_code == 200 and "Pass valable" in ok.text


def test_check_form_needs_the_code_and_keeps_what_was_typed(app, browser, passes, failures):
    client = browser
    with app.app_context():
        emis = db.session.execute(sa.select(Pass).where(Pass.state == PassState.EMIS)
                                  .order_by(Pass.id)).scalars().first().serial
    answers = []
    for serial in (passes["serial"], emis):
        for code in ("", passes["other_code"]):
            response = client.post("/verifier", {"serial": serial, "code": code})
            assert response.status_code == 422 and _french(response.text), (serial, code)
            assert f'value="{serial}"' in response.text and f'value="{code}"' in response.text
            assert 'class="field-error"' in response.text
            assert "Pass valable" not in response.text and "pas encore remis" not in response.text
            answers.append(_strip(response.text).replace(code, "CODE"))
    assert answers[0] == answers[2] and answers[1] == answers[3], "the answer depends on the pass"
    assert len(failures) == 4
    ok = client.post("/verifier", {"serial": passes["serial"], "code": passes["code"]})
    assert ok.status_code == 200 and "Pass valable" in ok.text


def test_bare_serials_are_throttled_on_the_public_pages(app, browser, passes):
    client = browser
    """Enumerating serials is not free: after the limit, 429 in French."""
    limit = app.config["LOGIN_THROTTLE"]["pass_check"][0]
    statuses = [client.get(f"/P/{serials.make_serial('MGP2', 931, n % 10 + 1).canonical}"
                           ).status_code for n in range(limit + 1)]
    assert statuses[0] == 422 and statuses[-1] == 429


# ------------------------------------------------------------------ where a pass may be used

def test_pass_of_another_commune_is_accepted_and_flagged(app, passes):
    """Inside the programme's perimeter a beneficiary may go to any qualified
    place; a pass confié to Bondy used in Montreuil is recorded for review."""
    with app.app_context():
        from portal.domain import operateurs
        elsewhere = "montreuil-mediatheque"
        assert structure(db.session, elsewhere).parent_id != structure(db.session).parent_id
        token = new_token(db.session, elsewhere)
        service = operateurs.active_services(db.session, structure(db.session, elsewhere).id)[0]
        db.session.commit()
    response = app.test_client().post(
        "/api/v1/scans", json={"code": passes["qr"], "service_id": service.id},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "x1"})
    assert response.status_code == 201
    with app.app_context():
        anomaly = db.session.execute(sa.select(Anomaly)).scalar_one()
        assert anomaly.kind is AnomalyKind.AUTRE_COMMUNE and anomaly.serial == passes["serial"]
        assert "Bondy" in anomaly.detail and "Montreuil" in anomaly.detail


@contextlib.contextmanager
def statements_sent(engine):
    """The SQL text of every statement sent to ``engine`` inside the block."""
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def test_authenticate_reads_nothing_before_the_secret_is_proven(app, passes):
    """The rule lives in one domain function: without the secret it answers
    without a single query (so nothing about the pass can leak)."""
    from portal.domain import passcheck
    from portal.domain.errors import InvalidInput
    with app.app_context(), statements_sent(db.engine) as statements:
        for body in forgeries(passes).values():
            with pytest.raises(InvalidInput):
                passcheck.authenticate(db.session, **body)
        assert statements == []
        assert keys.pass_ring().key_ids  # the ring the codes were checked against


def test_the_scan_reads_nothing_before_the_secret_is_proven(app, passes):
    """The scan reads the pass with its checks in one statement
    (``scanning.locate``): without the secret, not even that one is sent;
    with it, exactly one."""
    import types

    from portal.domain import scanning
    from portal.domain.errors import InvalidInput
    place = types.SimpleNamespace(id=10**6, parent_id=None)    # no statement needs it real
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context(), statements_sent(db.engine) as statements:
        for body in forgeries(passes).values():
            with pytest.raises(InvalidInput):
                scanning.locate(db.session, scanning.ScanInput(**body), place, now)
        assert statements == []
        for body in genuine(passes):
            found, context = scanning.locate(db.session, scanning.ScanInput(**body), place, now)
            assert found.serial == passes["serial"] and context.qualification is None
        reads = [sql for sql in statements if not sql.startswith("BEGIN")]   # SQLite's own BEGIN
        assert len(reads) == 2 and all("FROM passes" in sql for sql in reads)
