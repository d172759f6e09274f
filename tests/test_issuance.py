"""Programmes, orders, activation, the pass page, printing and the export."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
import sqlalchemy as sa

from helpers import issued_and_activated, new_programme, programme, tenant
from portal.domain import custody, issuance, keys, serials
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.models import Carnet, LedgerEntry, Pass, PassOrder
from portal.models.issuance import PassState
from portal.models.ledger import Nature


def test_order_creates_carnets_and_pass_in_state_emis(db_session):
    prog = new_programme(db_session)
    order = issuance.order_carnets(db_session, prog, 3, actor=Actor(None, prog.issuer_id))
    db_session.commit()
    passes = db_session.execute(sa.select(Pass).where(Pass.programme_id == prog.id)
                                .order_by(Pass.id)).scalars().all()
    assert len(passes) == 30
    assert {p.state for p in passes} == {PassState.EMIS}
    assert {p.holder_id for p in passes} == {prog.issuer_id}
    assert passes[0].serial == serials.format_serial("ABC", 1, 1)
    assert passes[-1].serial == serials.format_serial("ABC", 3, 10)
    (entry,) = db_session.execute(sa.select(LedgerEntry).where(
        LedgerEntry.programme_id == prog.id)).scalars().all()
    assert (entry.nature, entry.count, entry.amount_cents) == (Nature.EMISSION, 30, 30_000)
    assert (entry.ref_type, entry.ref_id) == ("commande", order.id)
    second = issuance.order_carnets(db_session, prog, 2, actor=Actor(None, prog.issuer_id))
    assert (second.first_carnet_number, second.last_carnet_number) == (4, 5)


def test_activation_needs_the_payment_reference(db_session):
    prog = new_programme(db_session)
    order = issuance.order_carnets(db_session, prog, 2, actor=Actor(None, prog.issuer_id))
    with pytest.raises(Conflict, match="numéro de mandat"):
        issuance.activate_order(db_session, order, actor=Actor(None, prog.issuer_id))
    with pytest.raises(InvalidInput):
        issuance.record_payment_reference(db_session, order, "   ", actor=Actor(None, None))
    issuance.record_payment_reference(db_session, order, "MANDAT-2021-7", actor=Actor(None, None))
    assert issuance.activate_order(db_session, order, actor=Actor(None, prog.issuer_id)) == 20
    assert custody.state_counts(db_session, prog.id) == {
        (PassState.ACTIVE, prog.commanditaire_id): 20}
    with pytest.raises(Conflict, match="déjà activée"):
        issuance.activate_order(db_session, order, actor=Actor(None, prog.issuer_id))
    with pytest.raises(Conflict):
        issuance.record_payment_reference(db_session, order, "AUTRE", actor=Actor(None, None))


def test_order_beyond_the_programme_stock_is_refused(db_session):
    prog = new_programme(db_session, total_stock=100)
    issuance.order_carnets(db_session, prog, 8, actor=Actor(None, None))
    with pytest.raises(Conflict, match="2 carnet"):
        issuance.order_carnets(db_session, prog, 3, actor=Actor(None, None))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInput):
            issuance.order_carnets(db_session, prog, bad, actor=Actor(None, None))


def test_frozen_settings_once_pass_exist(db_session):
    prog = new_programme(db_session)
    issuance.update_programme(db_session, prog, prefix="XYZ")
    issuance.order_carnets(db_session, prog, 1, actor=Actor(None, None))
    with pytest.raises(InvalidInput, match="ne peut plus changer"):
        issuance.update_programme(db_session, prog, face_value_cents=2000)
    with pytest.raises(InvalidInput, match="stock total"):
        issuance.update_programme(db_session, prog, total_stock=5)
    with pytest.raises(InvalidInput, match="tolérance"):
        import datetime as dt
        issuance.update_programme(db_session, prog, tolerance_until=dt.date(2000, 1, 1))


# ------------------------------------------------------------------ web: MGP and #APTIC

def test_mgp_records_payment_and_aptic_activates_through_the_pages(app, browser_factory):
    aptic = browser_factory().login("aptic.admin")
    response = aptic.post("/mandataire/aptic/emission/commandes",
                          {"programme_id": "2", "carnet_count": "5"})
    assert response.status_code == 303
    page = aptic.get("/mandataire/aptic/emission").text
    assert "5 carnets émis" in page or "Commande n°" in page
    with app.app_context():
        from portal.extensions import db
        order = db.session.execute(sa.select(PassOrder).order_by(PassOrder.id.desc())).scalars().first()
    assert aptic.post(f"/mandataire/aptic/emission/commandes/{order.id}/activer").status_code == 409
    mgp = browser_factory().login("mgp.admin")
    response = mgp.post(f"/metropole/mgp/commandes/{order.id}/mandat",
                        {"payment_reference": "MANDAT-2026-99"})
    assert response.status_code == 303
    assert "MANDAT-2026-99" in mgp.get(f"/metropole/mgp/programmes/{order.programme_id}").text
    assert aptic.post(f"/mandataire/aptic/emission/commandes/{order.id}/activer").status_code == 303
    # An MGP agent (no permission) cannot record a payment reference.
    agent = browser_factory().login("mgp.agent")
    assert agent.post(f"/metropole/mgp/commandes/{order.id}/mandat",
                      {"payment_reference": "X"}).status_code == 403


def test_bad_order_input_is_a_french_422(browser):
    browser.login("aptic.admin")
    for data in ({"programme_id": "2", "carnet_count": "-3"},
                 {"programme_id": "2", "carnet_count": "deux"},
                 {"programme_id": "abc", "carnet_count": "1"}):
        response = browser.post("/mandataire/aptic/emission/commandes", data)
        assert response.status_code == 422, data
        assert "«" in response.text
    response = browser.post("/mandataire/aptic/emission/commandes",
                            {"programme_id": "999", "carnet_count": "1"})
    assert response.status_code == 404


def test_programme_settings_form(browser_factory, app):
    mgp = browser_factory().login("mgp.admin")
    page = mgp.get("/metropole/mgp/programmes/1").text
    assert "Volume d'amorçage" in page
    form = {"name": "AMI 1 modifié", "face_value_cents": "1000", "pass_per_carnet": "10",
            "total_stock": "155000", "amorcage_size": "5000", "abondement_size": "2500",
            "abondement_threshold_pct": "50", "delivery_working_days": "20",
            "valid_until": "2022-01-31", "tolerance_until": "2022-01-31",
            "request_window_start": "2021-01-01", "request_window_end": "2021-10-01",
            "convention_ends_on": "2021-10-31", "experience_due_on": "2021-09-15",
            "target_publics": "seniors"}
    assert mgp.post("/metropole/mgp/programmes/1/modifier", form).status_code == 303
    page = mgp.get("/metropole/mgp/programmes/1").text
    assert "AMI 1 modifié" in page and 'value="2021-09-15"' in page
    with app.app_context():
        from portal.extensions import db
        from portal.models import Programme
        assert db.session.get(Programme, 1).experience_due_on.isoformat() == "2021-09-15"
    missing = {k: v for k, v in form.items() if k != "experience_due_on"}
    response = mgp.post("/metropole/mgp/programmes/1/modifier", missing)
    assert response.status_code == 422 and "Retour d'expérience" in response.text
    bad = dict(form, amorcage_size="cinq mille")
    response = mgp.post("/metropole/mgp/programmes/1/modifier", bad)
    assert response.status_code == 422 and "Volume d'amorçage" in response.text
    agent = browser_factory().login("mgp.agent")
    assert agent.post("/metropole/mgp/programmes/1/modifier", form).status_code == 403


# ------------------------------------------------------------------ pass page

def _payload(session, p: Pass) -> str:
    return serials.qr_payload("HTTP://LOCALHOST", keys.pass_ring(), p.key_id, p.serial)


def _first_pass(app, prefix="MGP2"):
    from portal.extensions import db
    with app.app_context():
        prog = programme(db.session, prefix)
        p = db.session.execute(sa.select(Pass).where(Pass.programme_id == prog.id,
                                                     Pass.state == PassState.ACTIVE)
                               .order_by(Pass.id)).scalars().first()
        return p, _payload(db.session, p)


def test_pass_page_shows_status_without_personal_data(app, browser):
    p, payload = _first_pass(app)
    path = payload.split("HTTP://LOCALHOST", 1)[1]
    response = browser.get(path)
    assert response.status_code == 200
    assert "Pass pas encore remis" in response.text
    assert p.serial in response.text and "Neuilly-Plaisance" in response.text
    # Lowercase URL (some phones lowercase what they open) works too.
    assert browser.get(path.lower()).status_code == 200


def test_pass_page_distinguishes_typo_forgery_and_unknown(app, browser):
    p, payload = _first_pass(app)
    path = payload.split("HTTP://LOCALHOST", 1)[1]
    serial = p.serial
    typo = serial[:6] + ("1" if serial[6] != "1" else "2") + serial[7:]
    response = browser.get(path.replace(serial, typo))
    assert response.status_code == 422 and "faute de frappe" in response.text
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    response = browser.get(forged)
    assert response.status_code == 422 and "falsifié" in response.text
    response = browser.get("/P/n'importe quoi")
    assert response.status_code == 422 and "illisible" in response.text
    unknown = serials.format_serial("MGP2", 999_999, 1)
    unknown_payload = serials.qr_payload("HTTP://LOCALHOST", keys.pass_ring(), "D1", unknown)
    response = browser.get(unknown_payload.split("HTTP://LOCALHOST", 1)[1])
    assert response.status_code == 404 and "Pass inconnu" in response.text


def test_pass_check_failures_are_throttled(app, browser):
    for _ in range(20):
        assert browser.get("/P/MGP2-0000001-01-00-D1AAAAAAAAAAAAA").status_code == 422
    response = browser.get("/P/MGP2-0000001-01-00-D1AAAAAAAAAAAAA")
    assert response.status_code == 429 and "Trop de tentatives" in response.text


def test_manual_check_with_serial_and_code(app, browser):
    p, _payload_ = _first_pass(app)
    code = serials.verification_code(keys.pass_ring(), p.key_id, p.serial)
    response = browser.post("/verifier", {"serial": p.serial.replace("-", ""),
                                          "code": code.lower()})
    assert response.status_code == 200 and "Pass pas encore remis" in response.text
    wrong = ("0" if code[0] != "0" else "1") + code[1:]
    response = browser.post("/verifier", {"serial": p.serial, "code": wrong})
    assert response.status_code == 422 and "code de vérification incorrect" in response.text
    assert f'value="{p.serial}"' in response.text and f'value="{wrong}"' in response.text
    response = browser.post("/verifier", {"serial": "", "code": ""})
    assert response.status_code == 422


def test_pass_page_for_valid_used_and_not_activated_pass(app, browser):
    from portal.extensions import db
    with app.app_context():
        prog = programme(db.session, "MGP2")
        pid = db.session.execute(sa.select(Pass.id).where(
            Pass.programme_id == prog.id, Pass.state == PassState.ACTIVE)
            .order_by(Pass.id)).scalars().first()
        structure_id = tenant(db.session, "bondy-centre-social").id
        for nature, holder in ((Nature.LIVRAISON, tenant(db.session, "bondy").id),
                               (Nature.REPARTITION, structure_id),
                               (Nature.DISTRIBUTION, structure_id)):
            custody.move(db.session, prog, nature=nature, criteria=[Pass.id == pid],
                         to_holder_id=holder, actor=Actor(None, None))
        db.session.commit()
        p = db.session.get(Pass, pid)
        payload = _payload(db.session, p)
        emis = db.session.execute(sa.select(Pass).where(
            Pass.programme_id == prog.id, Pass.state == PassState.EMIS)).scalars().first()
        emis_payload = _payload(db.session, emis)
    path = payload.split("HTTP://LOCALHOST", 1)[1]
    response = browser.get(path)
    assert "Pass valable" in response.text and "result-ok" in response.text
    with app.app_context():
        custody.move(db.session, prog, nature=Nature.SCAN, criteria=[Pass.id == pid],
                     to_holder_id=structure_id, actor=Actor(None, None))
        db.session.commit()
    assert "Pass déjà utilisé" in browser.get(path).text
    assert "Pass non activé" in browser.get(emis_payload.split("HTTP://LOCALHOST", 1)[1]).text


# ------------------------------------------------------------------ printing, documents, export

def test_print_job_produces_a_pdf_with_progress(app, browser):
    browser.login("aptic.admin")
    response = browser.post("/mandataire/aptic/impressions",
                            {"programme_id": "2", "first_carnet": "1", "last_carnet": "3"})
    assert response.status_code == 303
    job_url = response.location
    page = browser.get(job_url).text
    assert "terminé" in page and "3 / 3" in page.replace("\u202f", " ")
    fragment = browser.get(job_url, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'id="print-progress"' in fragment.text
    assert "hx-trigger" not in fragment.text  # finished: polling stops
    pdf = browser.get(job_url + "/carnets.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    pdf.close()
    # A range with carnets never issued is refused in French.
    response = browser.post("/mandataire/aptic/impressions",
                            {"programme_id": "2", "first_carnet": "1", "last_carnet": "1200"})
    assert response.status_code == 422 and "pas été émis" in response.text
    # Another issuer's print job is not reachable (404), like any other tenant row.
    other = browser.get("/mandataire/aptic/impressions/999")
    assert other.status_code == 404


def test_explanatory_document_for_the_commune(browser):
    browser.login("referent.bondy")
    page = browser.get("/commune/bondy/").text
    link = re.search(r'href="(/commune/bondy/programmes/\d+/document-explicatif.pdf)"', page).group(1)
    pdf = browser.get(link)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    pdf.close()
    assert browser.get("/commune/bondy/programmes/999/document-explicatif.pdf").status_code == 404


def test_export_gives_every_pass_with_its_history(app, db_session):
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 2)
    custody.move(db_session, prog, nature=Nature.LIVRAISON,
                 criteria=[Pass.carnet_id == db_session.execute(
                     sa.select(Carnet.id).where(Carnet.programme_id == prog.id, Carnet.number == 2)
                 ).scalar_one()],
                 to_holder_id=tenant(db_session, "bondy").id, actor=Actor(None, None))
    db_session.commit()
    from portal.domain import export
    text = export.export_to_string(db_session, prog, "csv")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    header, rows = rows[0], rows[1:]
    assert header[0] == "serie"
    by_serial = {}
    for row in rows:
        by_serial.setdefault(row[0], []).append(row[7])
    assert len(by_serial) == 20
    assert by_serial[serials.format_serial("ABC", 1, 1)] == ["emission", "activation"]
    assert by_serial[serials.format_serial("ABC", 2, 10)] == ["emission", "activation", "livraison"]
    document = json.loads(export.export_to_string(db_session, prog, "json"))
    assert len(document["pass"]) == 20
    last = document["pass"][-1]
    assert last["state"] == "livre" and last["holder"] == "Bondy"
    assert [m["nature"] for m in last["mouvements"]] == ["emission", "activation", "livraison"]


def test_export_download_goes_through_a_job_and_is_scoped(app, browser_factory):
    """« Exporter » prepares the file in a job (issue 16; tests run it when the
    request ends): one line per (pass, movement), plus the header."""
    mgp = browser_factory().login("mgp.agent")
    response = mgp.post("/metropole/mgp/programmes/2/export.csv")
    assert response.status_code == 303
    download = mgp.get(response.location + "/fichier")
    body = download.get_data(as_text=True)
    download.close()
    with app.app_context():
        from portal.extensions import db
        covered = db.session.execute(sa.select(sa.func.sum(LedgerEntry.count)).where(
            LedgerEntry.programme_id == 2)).scalar()
    assert covered > 21_000
    assert body.startswith("\ufeffserie;") and body.count("\n") == covered + 1
    commune = browser_factory().login("referent.bondy")
    assert commune.post("/metropole/mgp/programmes/2/export.csv").status_code == 404
    assert commune.get(response.location + "/fichier").status_code == 404


def test_export_command(app, tmp_path):
    out = tmp_path / "mgp2.json"
    result = app.test_cli_runner().invoke(args=["export-programme", "MGP2", "--format", "json",
                                                "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["pass"]) == 11_000
