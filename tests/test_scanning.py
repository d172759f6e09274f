"""Scanning (issue 6): API status codes, idempotency, the scan page, undo,
distinct persons, offline sync, anomalies, bad input."""
from __future__ import annotations

import datetime as dt
import io

import pytest
import sqlalchemy as sa

from portal.domain import accounts, clock, operateurs, scanning
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.models import (Anomaly, AnomalyKind, LedgerEntry, Nature, OperateurProfile, Pass,
                           PassState, Qualification, Scan)
from scan_helpers import (OPERATEUR, PRESCRIPTEUR_EMAIL, hand_out, in_state, new_token,
                          programme_of, qr, structure, verification_code)


@pytest.fixture
def api(app):
    """(client, headers, service_id, pass ids handed out)."""
    with app.app_context():
        ids = hand_out(db.session, carnets=[901, 902])
        token = new_token(db.session)
        db.session.commit()
        service_id = operateurs.active_services(db.session, structure(db.session).id)[0].id
    client = app.test_client()
    return client, {"Authorization": f"Bearer {token}"}, service_id, ids


def _code(app, pass_id):
    with app.app_context():
        return qr(db.session.get(Pass, pass_id))


def _consume(client, headers, body, key):
    return client.post("/api/v1/scans", json=body, headers={**headers, "Idempotency-Key": key})


def test_api_consume_replay_conflict_and_key_reuse(app, api):
    client, headers, service_id, ids = api
    body = {"code": _code(app, ids[0]), "service_id": service_id}
    first = _consume(client, headers, body, "k-1")
    assert first.status_code == 201 and first.json["message"] == "Pass validé"
    replay = _consume(client, headers, body, "k-1")
    assert replay.status_code == 200 and replay.json == first.json
    assert replay.headers["Idempotent-Replayed"] == "true"
    again = _consume(client, headers, body, "k-2")
    assert again.status_code == 409 and "déjà utilisé" in again.json["message"]
    assert "Centre social et numérique de Bondy" in again.json["message"]
    other_body = {"code": _code(app, ids[1]), "service_id": service_id}
    assert _consume(client, headers, other_body, "k-1").status_code == 422
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Scan)).scalar() == 1
        entries = db.session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.nature == Nature.SCAN)).scalars().all()
        assert len(entries) == 1 and entries[0].amount_cents == 1000
        anomaly = db.session.execute(sa.select(Anomaly)).scalar_one()
        assert anomaly.kind is AnomalyKind.DOUBLE_SCAN


def test_api_status_codes(app, api):
    client, headers, service_id, ids = api
    # test: valid, nothing consumed
    tested = client.post("/api/v1/pass/test", json={"code": _code(app, ids[0])}, headers=headers)
    assert tested.status_code == 200 and tested.json["valid"] is True
    # unknown (well-formed, authentic-looking but never issued) → 404
    with app.app_context():
        found = db.session.get(Pass, ids[0])
        serial = found.serial
        vcode = verification_code(found)
        not_handed = in_state(db.session, PassState.ACTIVE)[0]
        not_handed_code = qr(not_handed)
    response = _consume(client, headers, {"serial": "MGP2-0999999-01-" + "00",
                                          "verification_code": "ABCDEF"}, "u1")
    assert response.status_code == 422       # bad check digits: typo
    from portal.domain import serials
    unknown = serials.make_serial("MGP2", 999_999, 1).canonical
    response = _consume(client, headers, {"serial": unknown, "verification_code": "ABCDEF"}, "u2")
    assert response.status_code == 422       # without its secret, nothing is said of a serial
    with app.app_context():
        from portal.domain import keys
        ring = keys.pass_ring()
        genuine = serials.verification_code(ring, ring.active_id, unknown)
    response = _consume(client, headers, {"serial": unknown, "verification_code": genuine}, "u3")
    assert response.status_code == 404 and response.json["message"]
    # forged QR (MAC wrong) → 422
    forged = _code(app, ids[1])[:-3] + "AAA"
    assert _consume(client, headers, {"code": forged}, "f1").status_code == 422
    # manual serial + verification code works
    assert _consume(client, headers, {"serial": serial, "verification_code": vcode,
                                      "service_id": service_id}, "m1").status_code == 201
    # not yet handed out → 409
    response = _consume(client, headers, {"code": not_handed_code, "service_id": service_id}, "n1")
    assert response.status_code == 409 and "pas encore remis" in response.json["message"]
    # blocked → 410
    blocked_serial = serial_of(app, ids[2])
    with app.app_context():
        from portal.domain import validity
        validity.oppose(db.session, programme_of(db.session), blocked_serial, "",
                        reason="vol", actor=Actor(None, None))
        db.session.commit()
    response = _consume(client, headers, {"code": _code(app, ids[2]), "service_id": service_id},
                        "b1")
    assert response.status_code == 410 and "bloqué" in response.json["message"]
    # missing key → 422; malformed bodies → 422; no token → 401
    assert client.post("/api/v1/scans", json={"code": "x"}, headers=headers).status_code == 422
    for bad in (b"not json", b"[1,2]", b'{"code": 5}', b'{"service_id": "x", "code": "a"}',
                b'{"zzz": 1}', b'{"occurred_at": "hier", "code": "a"}'):
        response = client.post("/api/v1/scans", data=bad, content_type="application/json",
                               headers={**headers, "Idempotency-Key": "bad"})
        assert response.status_code == 422 and response.json["message"], bad
    assert client.post("/api/v1/scans", json={}).status_code == 401


def serial_of(app, pass_id):
    with app.app_context():
        return db.session.get(Pass, pass_id).serial


def test_api_expired_forbidden_and_throttled(app, api):
    client, headers, service_id, ids = api
    with app.app_context():
        programme = programme_of(db.session)
        programme.tolerance_until = clock.today() - dt.timedelta(days=1)
        programme.valid_until = clock.today() - dt.timedelta(days=30)
        db.session.commit()
    response = _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id},
                        "e1")
    assert response.status_code == 410 and "expiré" in response.json["message"]
    with app.app_context():
        programme = programme_of(db.session)
        programme.tolerance_until = clock.today() + dt.timedelta(days=10)
        profile = db.session.execute(sa.select(OperateurProfile).where(
            OperateurProfile.structure_id == structure(db.session).id)).scalar_one()
        operateurs.set_qualification(db.session, structure(db.session), Qualification.SUSPENDU,
                                     reason="contrôle", actor=Actor(None, None))
        db.session.commit()
        assert profile.id
    response = _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id},
                        "q1")
    assert response.status_code == 403 and "non qualifié" in response.json["message"]
    statuses = [_consume(client, headers, {"code": "n'importe quoi"}, f"t{i}").status_code
                for i in range(35)]
    assert statuses[0] == 422 and statuses[-1] == 429


def test_validity_tolerance_boundaries(app, api):
    client, headers, service_id, ids = api
    from portal.domain import clock
    today = clock.today()          # scans are dated in Paris time, by the one clock
    with app.app_context():
        programme = programme_of(db.session)
        programme.valid_until = today - dt.timedelta(days=5)
        programme.tolerance_until = today          # last day of tolerance: still accepted
        db.session.commit()
    assert _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id},
                    "v1").status_code == 201
    with app.app_context():
        programme_of(db.session).tolerance_until = today - dt.timedelta(days=1)
        db.session.commit()
    assert _consume(client, headers, {"code": _code(app, ids[1]), "service_id": service_id},
                    "v2").status_code == 410


def test_same_person_as_prescripteur_is_refused(app):
    with app.app_context():
        ids = hand_out(db.session, carnets=[903])
        prescripteur = accounts.find_user(db.session, PRESCRIPTEUR_EMAIL)
        # the prescripteur also works for the opérateur (two hats, art. 8)
        from portal.domain.permissions import Role
        accounts.add_membership(db.session, prescripteur, structure(db.session), Role.OPERATEUR_AGENT)
        db.session.commit()
        scanner = scanning.Scanner(structure(db.session), prescripteur.id)
        service_id = operateurs.active_services(db.session, scanner.structure.id)[0].id
        code = qr(db.session.get(Pass, ids[0]))
        outcome = scanning.consume_once(db.session, scanning.ScanInput(code=code, service_id=service_id),
                                        scanner, "p1")
        assert outcome.status == 403 and "remis" in outcome.body["message"]
        other = accounts.find_user(db.session, f"operateur.{OPERATEUR}@demo.pass-numerique.fr")
        outcome = scanning.consume_once(db.session, scanning.ScanInput(code=code, service_id=service_id),
                                        scanning.Scanner(structure(db.session), other.id), "p2")
        assert outcome.status == 201


def test_undo_rules(app, api):
    client, headers, service_id, ids = api
    first = _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id}, "x1")
    scan_id = first.json["scan"]["id"]
    url = f"/api/v1/scans/{scan_id}/annulation"
    assert client.post(url, json={"reason": ""}, headers=headers).status_code == 422
    assert client.post(url, json={"reason": "erreur de pass"}, headers=headers).status_code == 200
    assert client.post(url, json={"reason": "encore"}, headers=headers).status_code == 409
    with app.app_context():
        assert db.session.get(Pass, ids[0]).state is PassState.DISTRIBUE
        natures = db.session.execute(sa.select(LedgerEntry.nature).where(
            LedgerEntry.pass_first_id == ids[0]).order_by(LedgerEntry.id)).scalars().all()
        assert natures[-2:] == [Nature.SCAN, Nature.ANNULATION_SCAN]
    # an undone scan can be redone (partial unique index)
    again = _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id}, "x2")
    assert again.status_code == 201
    # outside the window → 409
    with app.app_context():
        scan = db.session.get(Scan, again.json["scan"]["id"])
        with pytest.raises(scanning.Conflict):
            scanning.undo(db.session, scan, scanning.Scanner(structure(db.session), None),
                          reason="trop tard", window_minutes=30,
                          now=scan.recorded_at + dt.timedelta(minutes=31))


def test_offline_sync_conflict_is_refused_and_flagged(app, api):
    client, headers, service_id, ids = api
    code = _code(app, ids[0])
    earlier = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat()
    first = _consume(client, headers, {"code": code, "service_id": service_id,
                                       "occurred_at": earlier}, "off-1")
    assert first.status_code == 201 and first.json["scan"]["channel"] == "hors_ligne"
    assert first.json["scan"]["scanned_at"].startswith(earlier[:16])
    # a second phone synced later with its own key
    second = _consume(client, headers, {"code": code, "service_id": service_id,
                                        "occurred_at": earlier}, "off-2")
    assert second.status_code == 409
    # retried sync of the second: same refusal replayed, one anomaly only
    assert _consume(client, headers, {"code": code, "service_id": service_id,
                                      "occurred_at": earlier}, "off-2").status_code == 409
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).isoformat()
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)).isoformat()
    for when in (future, old, "2026-01-01T10:00:00"):
        response = _consume(client, headers, {"code": _code(app, ids[1]), "service_id": service_id,
                                              "occurred_at": when}, f"bad-{when}")
        assert response.status_code == 422, when
    with app.app_context():
        kinds = db.session.execute(sa.select(Anomaly.kind)).scalars().all()
        assert kinds.count(AnomalyKind.DOUBLE_SCAN) == 1


def test_carnet_burst_is_flagged_and_outside_perimeter_refused(app, api):
    client, headers, service_id, ids = api
    for n, pass_id in enumerate(ids[:10]):
        assert _consume(client, headers, {"code": _code(app, pass_id), "service_id": service_id},
                        f"c{n}").status_code == 201
    with app.app_context():
        kinds = set(db.session.execute(sa.select(Anomaly.kind)).scalars())
        assert AnomalyKind.CARNET_EN_RAFALE in kinds
        from portal.models import ProgrammePerimeter
        db.session.execute(sa.delete(ProgrammePerimeter).where(
            ProgrammePerimeter.tenant_id == structure(db.session).parent_id))
        db.session.commit()
    out = _consume(client, headers, {"code": _code(app, ids[10]), "service_id": service_id}, "out")
    assert out.status_code == 403 and out.json["code"] == "hors_perimetre"
    assert "périmètre" in out.json["message"]
    with app.app_context():
        assert db.session.get(Pass, ids[10]).state is PassState.DISTRIBUE


# ------------------------------------------------------------------ web scan page

def test_scan_page_tests_and_consumes_with_htmx(app, browser):
    with app.app_context():
        ids = hand_out(db.session, carnets=[904])
        code = qr(db.session.get(Pass, ids[0]))
        service_id = operateurs.active_services(db.session, structure(db.session).id)[0].id
    browser.login(f"operateur.{OPERATEUR}")
    page = browser.get(f"/structure/{OPERATEUR}/scan")
    assert page.status_code == 200 and "Scanner un pass" in page.text
    assert "<script>" not in page.text and "js/scan.js" in page.text
    htmx = {"HX-Request": "true"}
    tested = browser.post(f"/structure/{OPERATEUR}/scan/tester",
                          {"code": code, "service_id": service_id}, headers=htmx)
    assert tested.status_code == 200 and "Pass valable" in tested.text and "<html" not in tested.text
    done = browser.post(f"/structure/{OPERATEUR}/scan/valider",
                        {"code": code, "service_id": service_id, "idempotency_key": "w1"},
                        headers=htmx)
    assert done.status_code == 201 and "Pass validé" in done.text and "scan-ok" in done.text
    again = browser.post(f"/structure/{OPERATEUR}/scan/valider",
                         {"code": code, "service_id": service_id, "idempotency_key": "w2"},
                         headers=htmx)
    assert again.status_code == 409 and "Pass déjà utilisé" in again.text and "scan-ko" in again.text
    # bad form input → French 4xx fragment, never 500
    for data in ({"code": "", "serial": ""}, {"code": "x" * 400}, {"service_id": "abc", "code": code},
                 {"code": code, "occurred_at": "demain"}, {"code": "\x00"}):
        response = browser.post(f"/structure/{OPERATEUR}/scan/valider", data, headers=htmx)
        assert 400 <= response.status_code < 500, data


def test_manual_entry_is_recorded_as_typed_not_as_the_pages_default_channel(app, browser):
    """The form's hidden "channel" says douchette until scan.js changes it; a
    serial + verification code typed by hand is a manual entry (saisie)."""
    from portal.models import Channel
    with app.app_context():
        ids = hand_out(db.session, carnets=[907])
        found = db.session.get(Pass, ids[0])
        serial, vcode = found.serial, verification_code(found)
        service_id = operateurs.active_services(db.session, structure(db.session).id)[0].id
    browser.login(f"operateur.{OPERATEUR}")
    done = browser.post(f"/structure/{OPERATEUR}/scan/valider",
                        {"serial": serial, "verification_code": vcode, "channel": "douchette",
                         "service_id": service_id, "idempotency_key": "m1"}, headers={"HX-Request": "true"})
    assert done.status_code == 201 and "Pass validé" in done.text
    with app.app_context():
        scan = db.session.execute(sa.select(Scan).where(Scan.pass_id == ids[0])).scalar_one()
        assert scan.channel is Channel.SAISIE


def test_scan_photo_upload(app, browser):
    import qrcode
    with app.app_context():
        ids = hand_out(db.session, carnets=[905])
        code = qr(db.session.get(Pass, ids[0]))
    browser.login(f"operateur.{OPERATEUR}")
    image = qrcode.make(code)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    url = f"/structure/{OPERATEUR}/scan/photo"
    response = browser.post(url, {"photo": (io.BytesIO(buffer.getvalue()), "qr.png"),
                                  "action": "tester"}, content_type="multipart/form-data",
                            headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Pass valable" in response.text
    for photo in ((io.BytesIO(b"not an image"), "x.png"), (io.BytesIO(b""), "")):
        response = browser.post(url, {"photo": photo, "action": "tester"},
                                content_type="multipart/form-data", headers={"HX-Request": "true"})
        assert response.status_code == 422, photo


def test_pass_page_offers_one_tap_validation_to_operateurs(app, browser):
    with app.app_context():
        ids = hand_out(db.session, carnets=[906])
        code = qr(db.session.get(Pass, ids[0]))
    path = code.split("HTTP://LOCALHOST", 1)[1]
    assert "Valider ce pass" not in browser.get(path).text
    browser.login(f"operateur.{OPERATEUR}")
    page = browser.get(path)
    assert "Valider ce pass" in page.text
    import re
    action = re.search(r'action="([^"]+/scan/valider)"', page.text).group(1)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    service = re.search(r'<option value="(\d+)"', page.text).group(1)
    response = browser.post(action, {"code": path, "channel": "page_pass", "idempotency_key": key,
                                     "service_id": service})
    assert response.status_code == 200 and "Pass validé" in response.text
    with app.app_context():
        assert db.session.get(Pass, ids[0]).state is PassState.SCANNE


def test_operateur_admin_pages(app, browser):
    browser.login(f"admin.{OPERATEUR}")
    page = browser.get(f"/structure/{OPERATEUR}/operateur")
    assert page.status_code == 200 and "**** ****" in page.text
    created = browser.post(f"/structure/{OPERATEUR}/operateur/jetons", {"name": "Caisse"})
    assert created.status_code == 201 and "pn_" in created.text
    bad = browser.post(f"/structure/{OPERATEUR}/operateur/iban",
                       {"holder": "X", "iban": "FR7630004000031234567890144", "bic": "BNPAFRPP"})
    assert bad.status_code == 422 and "IBAN" in bad.text
    bad = browser.post(f"/structure/{OPERATEUR}/operateur/siret", {"siret": "12345678901234"})
    assert bad.status_code == 422
    ok = browser.post(f"/structure/{OPERATEUR}/operateur/siret", {"siret": "73282932000074"})
    assert ok.status_code == 303
    ok = browser.post(f"/structure/{OPERATEUR}/operateur/identite",
                      {"legal_representative": "Jeanne Martin", "is_public_body": "1"})
    assert ok.status_code == 303
    with app.app_context():
        profile = operateurs.profile_of(db.session, structure(db.session), create=False)
        assert profile.is_public_body and profile.legal_representative == "Jeanne Martin"


def test_deadlock_victim_is_run_again_and_written_once(app, api, monkeypatch):
    """PostgreSQL may abort a scan that waits on an opposition holding the
    ledger head (40P01): nothing was written, so the scan runs again. When
    every attempt is aborted the client gets the French 503 and may retry
    with the same key; nothing is half-written."""
    import psycopg

    from portal.domain import custody
    client, headers, service_id, ids = api
    real = custody.scan_pass
    calls = {"n": 0, "fail": 1}

    def flaky(session, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= calls["fail"]:
            session.execute(sa.text("SELECT 1"))    # something ran in the transaction
            raise sa.exc.OperationalError("UPDATE passes …", {}, psycopg.errors.DeadlockDetected(
                "deadlock detected"))
        return real(session, *args, **kwargs)
    monkeypatch.setattr(custody, "scan_pass", flaky)

    first = _consume(client, headers, {"code": _code(app, ids[0]), "service_id": service_id}, "d-1")
    assert first.status_code == 201 and first.json["message"] == "Pass validé"
    assert calls["n"] == 2

    calls.update(n=0, fail=scanning.TRANSIENT_ATTEMPTS)
    body = {"code": _code(app, ids[1]), "service_id": service_id}
    down = _consume(client, headers, body, "d-2")
    assert down.status_code == 503 and calls["n"] == scanning.TRANSIENT_ATTEMPTS
    with app.app_context():
        assert db.session.get(Pass, ids[1]).state is PassState.DISTRIBUE
        assert db.session.execute(sa.select(sa.func.count()).select_from(Scan)).scalar() == 1
    calls.update(n=0, fail=0)
    retried = _consume(client, headers, body, "d-2")
    assert retried.status_code == 201
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Scan)).scalar() == 2
        assert db.session.execute(sa.select(sa.func.count()).select_from(LedgerEntry).where(
            LedgerEntry.nature == Nature.SCAN)).scalar() == 2


def test_api_names_the_agent_for_a_pass_handed_out_in_the_same_place(app):
    """Art. 8 through the API: a token is a device, not a person. A pass handed
    out in the same structure needs the validating agent named (``agent``),
    a member allowed to scan and not the prescripteur; elsewhere the scan is
    recorded with the token and no person."""
    from portal.domain.permissions import Role
    with app.app_context():
        here = hand_out(db.session, carnets=[921], structure_slug=OPERATEUR)  # both hats
        elsewhere = hand_out(db.session, carnets=[922])                     # by the Bondy CCAS
        token = new_token(db.session)
        db.session.commit()
        service_id = operateurs.active_services(db.session, structure(db.session).id)[0].id
        codes = {pid: qr(db.session.get(Pass, pid)) for pid in (here[0], elsewhere[0])}
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def consume(pass_id, key, **extra):
        return _consume(client, headers, {"code": codes[pass_id], "service_id": service_id,
                                          **extra}, key)

    anonymous = consume(here[0], "a-1")
    assert anonymous.status_code == 422 and anonymous.json["code"] == "agent_requis"
    assert "agent" in anonymous.json["message"]
    stranger = consume(here[0], "a-2", agent="personne@exemple.fr")
    assert stranger.status_code == 422 and "Agent inconnu" in stranger.json["message"]
    outsider = consume(here[0], "a-3", agent=PRESCRIPTEUR_EMAIL)       # not a member here
    assert outsider.status_code == 422
    with app.app_context():
        prescripteur = accounts.find_user(db.session, PRESCRIPTEUR_EMAIL)
        accounts.add_membership(db.session, prescripteur, structure(db.session),
                                Role.OPERATEUR_AGENT)
        db.session.commit()
    same = consume(here[0], "a-4", agent=PRESCRIPTEUR_EMAIL)
    assert same.status_code == 403 and "vous-même remis" in same.json["message"]
    agent_email = f"operateur.{OPERATEUR}@demo.pass-numerique.fr"
    # the incomplete request was not stored with its key: resent with the agent, it passes
    other = consume(here[0], "a-1", agent=agent_email.upper())
    assert other.status_code == 201 and other.json["message"] == "Pass validé"
    replay = consume(here[0], "a-1", agent=agent_email)
    assert replay.status_code == 200 and replay.json == other.json
    reused = consume(here[0], "a-1", agent=PRESCRIPTEUR_EMAIL)   # same key, another agent
    assert reused.status_code == 422 and reused.json["code"] == "cle_reutilisee"
    plain = consume(elsewhere[0], "a-6")
    assert plain.status_code == 201
    with app.app_context():
        agent = accounts.find_user(db.session, agent_email)
        by_pass = {s.pass_id: s for s in db.session.execute(sa.select(Scan)).scalars()}
        assert set(by_pass) == {here[0], elsewhere[0]}
        assert by_pass[here[0]].user_id == agent.id
        assert by_pass[elsewhere[0]].user_id is None and by_pass[elsewhere[0]].api_token_id
        entry = db.session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.nature == Nature.SCAN, LedgerEntry.pass_first_id == here[0])).scalar_one()
        assert entry.actor_user_id == agent.id


def test_late_offline_retry_replays_its_stored_answer(app, api):
    """Issue 18: the key is no longer looked up before the scan; a retry
    meets its stored answer at the idempotency INSERT. A phone that retries
    an offline scan 8 days after it happened (too old to be recorded now)
    still gets the answer first given, not a 422, and nothing is written."""
    _client, _headers, service_id, ids = api
    with app.app_context():
        scanner = scanning.Scanner(structure(db.session), None)
        code = qr(db.session.get(Pass, ids[0]))
        now = dt.datetime.now(dt.timezone.utc)
        data = scanning.ScanInput(code=code, service_id=service_id,
                                  occurred_at=now - dt.timedelta(days=6))
        first = scanning.consume_once(db.session, data, scanner, "late-1", now=now)
        assert first.status == 201
        entries = db.session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)).scalar()
        later = scanning.consume_once(db.session, data, scanner, "late-1",
                                      now=now + dt.timedelta(days=2))
        assert later.status == 200 and later.replay and later.body == first.body
        # the same key with another request is still refused (422), not replayed
        other = scanning.ScanInput(code=qr(db.session.get(Pass, ids[1])), service_id=service_id)
        with pytest.raises(scanning.KeyReused):
            scanning.consume_once(db.session, other, scanner, "late-1", now=now)
        assert db.session.get(Pass, ids[1]).state is PassState.DISTRIBUE
        assert db.session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)).scalar() \
            == entries
        assert db.session.execute(sa.select(sa.func.count()).select_from(Scan)).scalar() == 1


def test_a_scan_reads_nothing_from_the_ledger(app, api):
    """Issue 18, scale: who handed the pass out (art. 8) comes with the pass
    (``passes.handed_by_id``, written by custody with the DISTRIBUTION entry),
    not from a search of the ledger — a query that walked the programme's
    entries (180 ms per scan at 1.2 M entries). A scan only INSERTs into it."""
    _client, _headers, service_id, ids = api
    with app.app_context():
        found = db.session.get(Pass, ids[0])
        assert found.handed_by_id is not None
        assert found.handed_by_id == db.session.execute(
            sa.select(LedgerEntry.actor_user_id).where(
                LedgerEntry.nature == Nature.DISTRIBUTION, LedgerEntry.pass_first_id <= ids[0],
                LedgerEntry.pass_last_id >= ids[0]).order_by(LedgerEntry.id.desc())).scalar()
        statements: list[str] = []
        engine = db.engine

        def record(conn, cursor, statement, params, context, executemany):
            statements.append(" ".join(statement.split()))
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            outcome = scanning.consume_once(
                db.session, scanning.ScanInput(code=qr(found), service_id=service_id),
                scanning.Scanner(structure(db.session), None), "no-ledger-read")
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert outcome.status == 201, outcome.body
        touching = [s for s in statements if "ledger_entries" in s]
        assert len(touching) == 1 and touching[0].startswith("INSERT INTO ledger_entries"), touching
