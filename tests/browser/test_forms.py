"""Forms keep what people typed, and the one-tap scan (issue 15), in chromium.

For each form below, on a 360×740 phone and at 1280 px: the person fills every field, one
value is refused (by the field parser or by a rule of the conventions), and the page that
comes back (status 4xx, same page, no « Retour à l'accueil ») shows the message right after
that field (or after its group's legend), marks it ``aria-invalid``, and still holds every
other value typed or chosen; nothing was written; axe finds no serious/critical violation on
the error state; no ``<button>`` lacks the component class. The mechanism is one place
(``portal/web/refill.py``); these tests go through the real forms.

Then the opérateur's phone: a pass's QR page (``/P/…``) validates with one tap, the verdict,
the service last used and « Valider ce pass » inside the first 360×740 screen, the result
in place with « Annuler ». Tap counts (clicks and choices; typing a value is not a tap) are
written to ``tests/artifacts/tap_counts.json`` and quoted in the README.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.browser.conftest import ARTIFACTS, MOBILE
from tests.browser.test_accessibility import DESKTOP, RoleWatch, check_page

VIEWPORTS = {"phone": MOBILE, "desktop": DESKTOP}
TAPS: dict[str, int] = {}

BARE_BUTTONS_JS = "() => Array.from(document.querySelectorAll('button:not(.button)'))" \
                  ".map(b => b.outerHTML.slice(0, 120))"
SMALL_BUTTONS_JS = """() => Array.from(document.querySelectorAll('.button'))
  .filter(b => b.offsetParent !== null && b.getBoundingClientRect().height < 44)
  .map(b => b.outerHTML.slice(0, 120))"""


@pytest.fixture
def watch(request, chromium, live_server):
    made = []

    def make(viewport):
        w = RoleWatch(chromium, live_server, viewport)
        made.append(w)
        return w
    yield make
    failed = getattr(request.node, "rep_call", None)
    for n, w in enumerate(made):
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            w.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}.png"),
                              full_page=True)
        w.context.close()


class Taps:
    """Counts what the person taps (clicks, checks, choices)."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def click(self, locator):
        self.count += 1
        locator.click()

    def check(self, locator):
        self.count += 1
        locator.check()

    def select(self, locator, **kwargs):
        self.count += 1
        locator.select_option(**kwargs)


def _record(name: str, taps: int) -> None:
    TAPS[name] = taps
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "tap_counts.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update(TAPS)
    path.write_text(json.dumps(known, indent=2, ensure_ascii=False))


def _submit(w, button, expected_status=(409, 422)):
    with w.page.expect_response(lambda r: r.request.method == "POST") as posted:
        button.click()
    w.page.wait_for_load_state()
    assert posted.value.status in expected_status, posted.value.status


def _error_state(w, field_selector: str, message: str, label: str) -> None:
    """The message sits right after the field (or its group's legend), the field is marked
    invalid and described by it; the page is the form's page; axe and buttons are clean."""
    page = w.page
    field = page.locator(field_selector).first
    assert field.get_attribute("aria-invalid") == "true", label
    note = page.locator(f"#{field.get_attribute('aria-describedby').split()[-1]}")
    assert message in note.inner_text(), (label, note.inner_text())
    placed = page.evaluate(
        """([f, n]) => {
             const field = document.querySelector(f), note = document.getElementById(n);
             const group = field.closest('fieldset');
             if (['radio', 'checkbox'].includes(field.type) && group)
               return group.querySelector('legend').nextElementSibling === note;
             const anchor = field.parentElement.tagName === 'LABEL' ? field.parentElement : field;
             return anchor.nextElementSibling === note;
           }""", [field_selector, note.get_attribute("id")])
    assert placed, f"{label}: the message is not next to its field"
    assert "Retour à l'accueil" not in page.inner_text("main")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-invalid')") == "true"
    problems = check_page(w, label)
    problems += [f"{label}: bare button {b}" for b in page.evaluate(BARE_BUTTONS_JS)]
    problems += [f"{label}: button under 44 px {b}" for b in page.evaluate(SMALL_BUTTONS_JS)]
    assert not problems, "\n".join(problems)
    if page.viewport_size["width"] == MOBILE["width"]:
        assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"] + 1


def _count(app, model) -> int:
    from portal.extensions import db
    with app.app_context():
        n = db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
        db.session.remove()
        return n


# ------------------------------------------------------------------ the forms

@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_hand_out_keeps_every_answer_when_the_carnet_is_refused(app, watch, viewport):
    from portal.models import Distribution
    w = watch(VIEWPORTS[viewport])
    w.sign_in(app, "prescripteur.neuilly-plaisance-ccas")
    page = w.page
    page.goto(w.base_url + "/structure/neuilly-plaisance-ccas/remise")
    card = page.locator("section.card", has_text="AMI 2")
    taps = Taps(page)
    card.get_by_label("Numéro du carnet remis").fill("999999")
    taps.check(card.get_by_label("Seniors"))
    taps.check(card.get_by_label("Démarches administratives en ligne"))
    taps.check(card.get_by_label("Envoyer et recevoir des courriels"))
    taps.select(card.get_by_label("Tranche d'âge"), label="60 ans et plus")
    taps.select(card.get_by_label("Équipement"), label="Smartphone seulement")
    taps.select(card.get_by_label("Orienté par"), label="Un facilitateur")
    before = _count(app, Distribution)
    _submit(w, card.get_by_role("button", name="Remettre le carnet"))
    taps.count += 1
    assert _count(app, Distribution) == before
    card = page.locator("section.card", has_text="AMI 2")
    _error_state(w, "section.card input[name=carnet_number]",
                 "Le carnet n° 999999 n'est pas dans le stock", f"remise ({viewport})")
    assert card.get_by_label("Numéro du carnet remis").input_value() == "999999"
    assert card.get_by_label("Seniors").is_checked()
    assert card.get_by_label("Démarches administratives en ligne").is_checked()
    assert card.get_by_label("Envoyer et recevoir des courriels").is_checked()
    assert card.get_by_label("Tranche d'âge").evaluate("s => s.selectedOptions[0].text") \
        == "60 ans et plus"
    assert card.get_by_label("Équipement").evaluate("s => s.selectedOptions[0].text") \
        == "Smartphone seulement"
    assert card.get_by_label("Orienté par").evaluate("s => s.selectedOptions[0].text") \
        == "Un facilitateur"
    # Corrected, the same form goes through: the other answers were kept, nothing retyped.
    from portal.domain import distribution
    from portal.extensions import db
    from portal.models import Tenant
    with app.app_context():
        ccas = db.session.execute(sa.select(Tenant).where(
            Tenant.slug == "neuilly-plaisance-ccas")).scalar_one()
        number = min(n for stock in distribution.structure_stock(db.session, ccas).values()
                     for n, _count_ in stock)
        db.session.remove()
    card.get_by_label("Numéro du carnet remis").fill(str(number))
    card.get_by_role("button", name="Remettre le carnet").click()
    page.wait_for_load_state()
    assert f"Carnet n° {number} remis" in page.inner_text("main")
    assert _count(app, Distribution) == before + 1
    if viewport == "phone":
        # Hand-out of one carnet: the prefilled carnet number is kept, so the taps are the
        # public, the needs, the three questions and « Remettre le carnet ».
        _record("remise d'un carnet", taps.count)


def _convention_id(app, slug: str) -> int:
    from portal.extensions import db
    from portal.models import Convention
    with app.app_context():
        found = db.session.execute(sa.select(Convention.id).where(
            Convention.commune.has(slug=slug), Convention.programme_id == 2)).scalar_one()
        db.session.remove()
        return found


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_split_keeps_structure_and_direction_when_the_count_is_refused(app, watch, viewport):
    from portal.models import LedgerEntry
    w = watch(VIEWPORTS[viewport])
    w.sign_in(app, "referent.neuilly-plaisance")
    page = w.page
    cid = _convention_id(app, "neuilly-plaisance")
    page.goto(f"{w.base_url}/commune/neuilly-plaisance/conventions/{cid}/repartition")
    page.select_option("#direction", "reprendre")
    structure = page.locator("#structure_id option").nth(1).inner_text().strip()
    page.select_option("#structure_id", label=structure)
    page.fill("#carnet_count", "90000")
    before = _count(app, LedgerEntry)
    _submit(w, page.locator("main form").get_by_role("button", name="Valider"))
    assert _count(app, LedgerEntry) == before
    _error_state(w, "#carnet_count", "carnet(s) complet(s) non distribués",
                 f"répartition ({viewport})")
    assert page.input_value("#carnet_count") == "90000"
    assert page.input_value("#direction") == "reprendre"
    assert page.locator("#structure_id").evaluate("s => s.selectedOptions[0].text").strip() \
        == structure
    # A value the parser refuses is shown the same way.
    page.locator("#carnet_count").evaluate("f => f.type = 'text'")   # past the browser check
    page.fill("#carnet_count", "douze")
    _submit(w, page.locator("main form").get_by_role("button", name="Valider"))
    _error_state(w, "#carnet_count", "doit être un nombre entier", f"répartition ({viewport})")
    assert page.input_value("#direction") == "reprendre"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_referent_designation_keeps_name_and_phone(app, watch, viewport):
    w = watch(VIEWPORTS[viewport])
    w.sign_in(app, "referent.neuilly-plaisance")
    page = w.page
    cid = _convention_id(app, "neuilly-plaisance")
    page.goto(f"{w.base_url}/commune/neuilly-plaisance/conventions/{cid}")
    page.get_by_text("Désigner ou changer le référent").click()
    page.fill("#referent_name", "Sacha Nouveau")
    page.fill("#referent_email", "sacha")
    page.locator("#referent_email").evaluate("f => f.type = 'text'")   # past the browser check
    page.fill("#referent_phone", "01 02 03 04 05")
    _submit(w, page.get_by_role("button", name="Enregistrer"))
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    _error_state(w, "#referent_email", "Adresse électronique du référent invalide",
                 f"référent ({viewport})")
    assert page.input_value("#referent_name") == "Sacha Nouveau"
    assert page.input_value("#referent_email") == "sacha"
    assert page.input_value("#referent_phone") == "01 02 03 04 05"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_aptic_qualification_keeps_the_decision_when_the_reason_is_missing(app, watch,
                                                                            viewport):
    w = watch(VIEWPORTS[viewport])
    w.sign_in(app, "aptic.admin")
    page = w.page
    page.goto(w.base_url + "/mandataire/aptic/operateurs")
    # The Bondy centre social is qualified: suspending it needs a reason (help centre).
    row = page.locator("tbody tr", has_text="Centre social et numérique de Bondy").first
    select = row.locator("select[name=qualification]")
    select_id = select.get_attribute("id")
    choice = "suspendu"
    select.select_option(choice)
    _submit(w, row.get_by_role("button", name="Enregistrer"))
    reason_id = "r-" + select_id.split("-", 1)[1]
    _error_state(w, f"#{reason_id}", "Indiquez le motif de la décision",
                 f"qualification ({viewport})")
    assert page.input_value(f"#{select_id}") == choice


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_structure_service_keeps_name_and_duration_when_the_price_is_refused(app, watch,
                                                                              viewport):
    w = watch(VIEWPORTS[viewport])
    w.sign_in(app, "admin.bondy-mediatheque")
    page = w.page
    page.goto(w.base_url + "/structure/bondy-mediatheque/operateur")
    page.fill("#svc-name", "Atelier tablette")
    page.fill("#svc-price", "12")
    page.fill("#svc-duration", "90")
    _submit(w, page.get_by_role("button", name="Ajouter"))
    _error_state(w, "#svc-price", "« Prix en pass » doit être au plus 10",
                 f"service ({viewport})")
    assert page.input_value("#svc-name") == "Atelier tablette"
    assert page.input_value("#svc-price") == "12"
    assert page.input_value("#svc-duration") == "90"


# ------------------------------------------------------------------ the one-tap scan

def _in_first_screen(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= MOBILE["height"]


def test_pass_page_validates_with_one_tap_and_offers_the_undo(app, watch):
    from portal.extensions import db
    from portal.models import Channel, OperateurService, Pass, PassState, Scan
    from tests.scan_helpers import hand_out, qr, structure
    with app.app_context():
        ids = hand_out(db.session)
        first, second = (db.session.get(Pass, i) for i in ids[:2])
        paths = [urlsplit(qr(p)).path for p in (first, second)]
        services = db.session.execute(sa.select(OperateurService).where(
            OperateurService.structure_id == structure(db.session).id,
            OperateurService.active.is_(True)).order_by(OperateurService.name)).scalars().all()
        last = services[-1]          # not the first alphabetically
        last_id, last_name, serial = last.id, last.name, first.serial
        db.session.remove()
    w = watch(MOBILE)
    w.sign_in(app, "operateur.bondy-centre-social")
    page = w.page
    # Yesterday this person used « last » at the scan page: the pass page offers it.
    page.goto(w.base_url + "/structure/bondy-centre-social/scan")
    page.select_option("#scan-service", str(last_id))
    page.fill("#scan-code", qr_payload_of(app, ids[2]))
    page.get_by_role("button", name="Valider", exact=True).click()
    page.locator("#scan-result .scan-ok").wait_for()

    page.goto(w.base_url + paths[0])        # what the phone's camera app opens
    assert page.locator(".pass-verdict").inner_text().strip().startswith("Pass valable")
    assert page.locator("select[name=service_id]").evaluate(
        "s => s.selectedOptions[0].text").startswith(last_name)
    button = page.get_by_role("button", name="Valider ce pass")
    for selector in (".pass-verdict", "select[name=service_id]"):
        assert _in_first_screen(page, selector), selector
    box = button.bounding_box()
    assert box["y"] + box["height"] <= MOBILE["height"] and box["width"] >= 0.85 * MOBILE["width"]
    assert page.locator("header.site-header").bounding_box()["height"] < 60
    taps = Taps(page)
    taps.click(button)
    result = page.locator("#pass-scan .scan-ok")
    result.wait_for()
    assert "Pass validé" in result.inner_text() and serial in result.inner_text()
    assert last_name in result.inner_text()
    assert _in_first_screen(page, "#pass-scan .scan-ok .scan-big")
    undo = page.locator("#pass-scan").get_by_role("button", name="Annuler")
    assert _in_first_screen(page, "#pass-scan .scan-undo button")
    _record("QR → pass validé (page du pass)", taps.count)
    with app.app_context():
        scan = db.session.execute(sa.select(Scan).where(Scan.pass_id == ids[0])).scalar_one()
        assert (scan.channel, scan.service_id, scan.cancelled_at) == (
            Channel.PAGE_PASS, last_id, None)
        assert db.session.get(Pass, ids[0]).state is PassState.SCANNE
        db.session.remove()
    problems = check_page(w, "/P/ result (360×740)")
    problems += [f"bare button {b}" for b in page.evaluate(BARE_BUTTONS_JS)]
    assert not problems, "\n".join(problems)
    # « Annuler »: one more tap (and the confirmation), the pass is usable again.
    page.once("dialog", lambda dialog: dialog.accept())
    undo.click()
    page.wait_for_load_state()
    assert "Scan annulé" in page.inner_text("main")
    with app.app_context():
        assert db.session.get(Pass, ids[0]).state is PassState.DISTRIBUE
        db.session.remove()
    assert w.csp_violations() == []
    assert [m for m in w.errors()] == []


def qr_payload_of(app, pass_id: int) -> str:
    from portal.extensions import db
    from portal.models import Pass
    from tests.scan_helpers import qr
    with app.app_context():
        payload = qr(db.session.get(Pass, pass_id))
        db.session.remove()
        return payload


def test_scan_page_keeps_the_field_above_the_fold_and_the_result_in_sight(app, watch):
    from portal.extensions import db
    from portal.models import Pass
    from tests.scan_helpers import hand_out, verification_code
    with app.app_context():
        found = db.session.get(Pass, hand_out(db.session)[0])
        serial, vcode = found.serial, verification_code(found)
        db.session.remove()
    w = watch(MOBILE)
    w.sign_in(app, "operateur.bondy-centre-social")
    page = w.page
    page.goto(w.base_url + "/structure/bondy-centre-social/scan")
    assert page.locator("header.site-header").bounding_box()["height"] < 60
    for selector in ("#scan-code", "#btn-consume"):
        assert _in_first_screen(page, selector), selector
    taps = Taps(page)
    taps.click(page.get_by_text("Saisie manuelle (numéro + code de vérification)"))
    page.get_by_label("Numéro du pass", exact=True).fill(serial)
    page.get_by_label("Code de vérification").fill(vcode)
    taps.click(page.get_by_role("button", name="Valider", exact=True))
    page.locator("#scan-result .scan-ok").wait_for()
    _record("saisie manuelle → pass validé (page de scan)", taps.count)
    # The recent scans were refreshed with the result (no reload).
    assert serial in page.locator("#recent-scans").inner_text()
    assert " pass" in page.locator("#scan-result .scan-service").inner_text()
    # The result banner stays in sight when the page is scrolled down.
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(200)
    assert _in_first_screen(page, "#scan-result .scan-big")
    assert w.csp_violations() == []
