"""Browser journeys (issue 8): each role does its job in Debian's chromium
against the live server, and each test asserts what the person reads (French
text) and what the database and the ledger hold afterwards.

The state a journey starts from is prepared through the domain API (the
demo data plus a few calls, e.g. thousands of pass consumed for the
abondement rule); the step the journey is about is always done in the
browser. Every page visited must raise no CSP violation and no console
error (``PageWatch`` records the whole session).

1. the Métropole confirms Montreuil's amorçage;
2. Montreuil's référent confirms reception of the shipment and splits carnets
   to its CCAS;
3. #APTIC grants Montreuil's pending habilitation request;
4. the Neuilly-Plaisance CCAS prescripteur hands out a carnet;
5. an opérateur on a 360×740 phone validates a pass by manual entry, and
   with the camera (a separate chromium whose fake camera plays a Y4M video
   of the pass's QR code, decoded by the vendored BarcodeDetector polyfill);
6. a second opérateur scanning the same pass reads who consumed it and when;
7. #APTIC closes last month and validates the statement (contre-paiement);
8. the Métropole sees Neuilly-Plaisance become an abondement candidate at
   50 % consumed, and confirms the abondement.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import zxingcpp
from PIL import Image

from helpers import next_totp_code
from portal.domain import clock
from portal.demo_operateurs import select_pass_ids
from portal.domain import (accounts, allocation, calendar, custody, distribution, keys, ledger,
                           operateurs, references, scanning, serials, settlement)
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.formatting import (PARIS, format_count, format_datetime, format_eur, format_pct)
from portal.models import (Anomaly, AnomalyKind, Carnet, Channel, Convention, Distribution,
                           Habilitation, HabilitationRequest, LedgerEntry, Mandate, Nature, Pass,
                           PassState, Programme, QuestionnaireAnswer, RequestStatus, Scan,
                           Statement, StatementStatus, Tenant, Tranche, TrancheKind,
                           TrancheStatus)
from portal.printing.qr import QUIET_ZONE, qr_rows
from browser.conftest import ARTIFACTS, CHROMIUM, MOBILE, PageWatch  # same module as pytest loads

DOMAIN = "demo.pass-numerique.fr"
PARIS_NOON = dt.time(12, 0)


# ------------------------------------------------------------------ helpers

class App:
    """Database access for a test running next to the live server."""

    def __init__(self, app):
        self.app = app

    def __enter__(self):
        self._ctx = self.app.app_context()
        self._ctx.push()
        return db.session

    def __exit__(self, *exc):
        db.session.remove()
        self._ctx.pop()


def tenant(session, slug):
    return session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()


def user(session, local):
    return accounts.find_user(session, f"{local}@{DOMAIN}")


def programme(session, prefix="MGP2"):
    return session.execute(sa.select(Programme).where(Programme.prefix == prefix)).scalar_one()


def convention(session, commune_slug, prefix="MGP2"):
    return session.execute(sa.select(Convention).where(
        Convention.commune_id == tenant(session, commune_slug).id,
        Convention.programme_id == programme(session, prefix).id)).scalar_one()


def ledger_entries(session, nature, **where):
    query = sa.select(LedgerEntry).where(LedgerEntry.nature == nature)
    for column, value in where.items():
        query = query.where(getattr(LedgerEntry, column) == value)
    return session.execute(query.order_by(LedgerEntry.id)).scalars().all()


def assert_ledger_intact(session):
    report = ledger.verify(session)
    assert report.ok, report.first_problem


def open_allocation_as_mgp(watched: PageWatch, app, prog):
    """MGP's administrator opens the programme's allocation page from the menu."""
    login(watched, app, "mgp.admin")
    page = watched.page
    nav(watched, "Programmes")
    page.locator("section.card", has_text=prog.name).get_by_role(
        "link", name="Allocation aux communes").click()
    page.wait_for_load_state()
    return page


def count(n: int) -> str:
    return format_count(n)      # 5 000 with a narrow no-break space, as the pages write it


def login(watch: PageWatch, app, local: str):
    """Sign in with the demo password; administrators type the TOTP code
    their authenticator app would show (demo secret, see README)."""
    page = watch.page
    watch.login(local)
    if "/connexion/verification" not in page.url:
        return
    page.fill("#code", next_totp_code(app, f"{local}@demo.pass-numerique.fr"))
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "/connexion/" not in page.url, page.inner_text("main")


def nav(watch: PageWatch, label: str):
    """Follow a link of the tenant's navigation."""
    watch.page.locator("nav.tenant-nav").get_by_role("link", name=label, exact=True).click()
    watch.page.wait_for_load_state()


def main_text(watch: PageWatch) -> str:
    """What the person reads: the flash messages and the page's content."""
    return watch.page.inner_text("main")


def assert_clean(watch: PageWatch, allowed: tuple[str, ...] = ()):
    """No CSP violation and no console error on any page of the session, and
    no serious accessibility violation (axe-core) on the page it ends on."""
    assert watch.csp_violations() == []
    errors = [m for m in watch.errors() if not any(a in m for a in allowed)]
    assert errors == []
    serious = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in watch.run_axe()
               if v["impact"] in ("serious", "critical")]
    assert serious == [], watch.page.url


def last_month_noon(day: int = 15) -> dt.datetime:
    """A moment of the previous month (the month #APTIC closes)."""
    first = dt.datetime.now(PARIS).date().replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=day)
    return dt.datetime.combine(previous, PARIS_NOON, PARIS).astimezone(dt.timezone.utc)


def hand_out_carnets(session, *, commune_slug, structure_slug, prescripteur, carnets, when=None):
    """Livraison, répartition and distribution of whole carnets through
    custody (what journeys 1–4 do through the screens). Returns pass ids."""
    prog = programme(session)
    commune, structure = tenant(session, commune_slug), tenant(session, structure_slug)
    ids = select_pass_ids(session, prog, list(carnets))
    criteria = [Pass.id.in_(ids)]
    custody.move(session, prog, nature=Nature.LIVRAISON, criteria=criteria,
                 to_holder_id=commune.id, actor=Actor(None, prog.issuer_id), now=when)
    custody.move(session, prog, nature=Nature.REPARTITION, criteria=criteria,
                 to_holder_id=structure.id, actor=Actor(None, commune.id), now=when)
    custody.move(session, prog, nature=Nature.DISTRIBUTION, criteria=criteria,
                 to_holder_id=structure.id,
                 actor=Actor(user(session, prescripteur).id, structure.id), now=when)
    return ids


def scan_through_domain(session, pass_ids, *, structure_slug, operateur, when=None):
    """Scans as the scan page records them (a Scan row per pass, ledger SCAN)."""
    structure = tenant(session, structure_slug)
    scanner = scanning.Scanner(structure, user(session, operateur).id)
    service_id = operateurs.active_services(session, structure.id)[0].id
    for pass_id in pass_ids:
        found = session.get(Pass, pass_id)
        code = serials.qr_payload("HTTP://LOCALHOST", keys.pass_ring(), found.key_id, found.serial)
        scanning.consume(session, scanning.ScanInput(code=code, service_id=service_id), scanner,
                         now=when)


def qr_code_of(session, pass_id) -> tuple[str, str, str]:
    """(QR payload, serial, verification code) of a pass, as printed."""
    found = session.get(Pass, pass_id)
    return (serials.qr_payload("HTTP://LOCALHOST", keys.pass_ring(), found.key_id, found.serial),
            found.serial, serials.verification_code(keys.pass_ring(), found.key_id, found.serial))


# ------------------------------------------------------------------ 1. amorçage

def test_mgp_confirms_montreuil_amorcage(app, watched):
    with App(app) as session:
        conv = convention(session, "montreuil")
        tranche = session.execute(sa.select(Tranche).where(
            Tranche.convention_id == conv.id)).scalar_one()
        assert tranche.status is TrancheStatus.DEMANDEE
        tranche_id, prog = tranche.id, programme(session)
        entries_before = len(ledger_entries(session, "livraison"))

    page = open_allocation_as_mgp(watched, app, prog)
    assert f"Allocation des pass — {prog.name}" in page.inner_text("h1")
    pending = page.locator("table tr", has_text="Montreuil").first
    assert "5\u202f000" in pending.inner_text()
    pending.get_by_role("button", name="Confirmer").click()
    page.wait_for_load_state()

    with App(app) as session:
        tranche = session.get(Tranche, tranche_id)
        assert tranche.status is TrancheStatus.CONFIRMEE and tranche.kind is TrancheKind.AMORCAGE
        assert tranche.confirmed_by_id == user(session, "mgp.admin").id
        assert tranche.due_on == calendar.add_working_days(
            tranche.confirmed_on, prog.delivery_working_days, prog.holiday_subdivision,
            prog.pentecost_worked)
        due = tranche.due_on
        # Confirming moves no pass: the carnets move when #APTIC ships them.
        assert len(ledger_entries(session, "livraison")) == entries_before
    text = main_text(watched)
    assert (f"Amorçage confirmé pour Montreuil : livraison attendue au plus tard le "
            f"{due:%d/%m/%Y}.") in text
    assert "Aucune demande en attente." in text
    committed = page.locator("ul.figures li", has_text="Tranches confirmées").inner_text()
    assert count(10_000) in committed       # Neuilly-Plaisance's amorçage + Montreuil's
    assert_clean(watched)


# ------------------------------------------------------------------ 2. reception and répartition

def test_referent_confirms_reception_and_splits_carnets_to_the_ccas(app, watched):
    with App(app) as session:
        conv = convention(session, "montreuil")
        prog, montreuil = conv.programme, conv.commune
        tranche = session.execute(sa.select(Tranche).where(
            Tranche.convention_id == conv.id)).scalar_one()
        today = clock.today()
        allocation.confirm_amorcage(session, tranche, actor=Actor(None, prog.commanditaire_id),
                                    today=today)
        numbers = allocation.available_carnet_numbers(session, prog, 500)
        allocation.ship_tranche(session, tranche, allocation.as_ranges(numbers),
                                actor=Actor(None, prog.issuer_id), today=today)
        session.commit()
        tranche_id, montreuil_id = tranche.id, montreuil.id
        ccas_id = tenant(session, "montreuil-ccas").id
        referent_id = user(session, "referent.montreuil").id
        first, last = min(numbers), max(numbers)

    login(watched, app, "referent.montreuil")
    page = watched.page
    nav(watched, "Conventions")
    page.get_by_role("link", name=prog.name).click()
    page.wait_for_load_state()
    reception = page.locator("section.card", has_text="Confirmer la réception")
    assert f"Carnets expédiés : {first} à {last}" in reception.inner_text()
    assert reception.locator("input[name=received_carnets]").input_value() == "500"
    reception.get_by_role("button", name="Confirmer la réception").click()
    page.wait_for_load_state()
    text = main_text(watched)
    assert "Réception confirmée : les pass reçus sont dans le stock de la commune." in text
    assert f"Pass détenus\n{count(5000)}" in page.locator("ul.figures").inner_text()

    with App(app) as session:
        tranche = session.get(Tranche, tranche_id)
        assert tranche.status is TrancheStatus.RECUE and tranche.received_quantity == 5000
        assert tranche.received_by_id == referent_id
        held = session.execute(sa.select(Pass.state, Pass.holder_id, sa.func.count())
                               .where(Pass.commune_id == montreuil_id)
                               .group_by(Pass.state, Pass.holder_id)).all()
        assert held == [(PassState.LIVRE, montreuil_id, 5000)]
        livraisons = ledger_entries(session, "livraison", ref_type="tranche", ref_id=tranche_id)
        assert sum(e.count for e in livraisons) == 5000
        assert {e.actor_user_id for e in livraisons} == {referent_id}

    page.get_by_role("link", name="Répartition des carnets entre les prescripteurs").click()
    page.wait_for_load_state()
    assert f"stock de la commune non réparti : {count(5000)} pass" in page.inner_text("main")
    page.select_option("#direction", "donner")
    page.select_option("#structure_id", label="CCAS de Montreuil")
    page.fill("#carnet_count", "120")
    page.locator("main form").get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    text = main_text(watched)
    # In carnets, named (issue 15): the lowest numbers of the commune's stock.
    assert re.search(r"120 carnets, n° (\d+) à (\d+), confiés à CCAS de Montreuil\.", text)
    first, last = map(int, re.search(r"120 carnets, n° (\d+) à (\d+), confiés", text).groups())
    assert last - first == 119
    assert f"stock de la commune non réparti : {count(3800)} pass" in text
    row = page.locator("table tr", has_text="CCAS de Montreuil").inner_text()
    assert row.split("\t")[-1].strip() == count(1200)

    with App(app) as session:
        at_ccas = session.execute(sa.select(sa.func.count()).where(
            Pass.holder_id == ccas_id, Pass.state == PassState.REPARTI)).scalar()
        assert at_ccas == 1200
        repartitions = ledger_entries(session, "repartition", to_holder_id=ccas_id)
        assert sum(e.count for e in repartitions) == 1200
        assert {e.actor_user_id for e in repartitions} == {referent_id}
        assert {e.commune_id for e in repartitions} == {montreuil_id}
        assert_ledger_intact(session)
    assert_clean(watched)


# ------------------------------------------------------------------ 3. habilitation

def test_aptic_grants_montreuils_habilitation_request(app, watched, chromium, live_server):
    with App(app) as session:
        request = session.execute(sa.select(HabilitationRequest)).scalar_one()
        assert request.status is RequestStatus.EN_ATTENTE
        request_id = request.id
        agent = user(session, "prescripteur.montreuil-ccas")
        agent_id, agent_name = agent.id, agent.full_name
        ccas_id = tenant(session, "montreuil-ccas").id
        mandate = session.execute(sa.select(Mandate)).scalar_one()
        mandate_id, reference = mandate.id, mandate.reference
        aptic_admin_id = user(session, "aptic.admin").id

    # Before: the prescripteur's desk refuses to hand anything out.
    desk = PageWatch(chromium, live_server)
    try:
        desk.login("prescripteur.montreuil-ccas")
        desk.goto("/structure/montreuil-ccas/remise")
        assert "Vous ne pouvez pas remettre de pass" in desk.page.inner_text("main")

        login(watched, app, "aptic.admin")
        page = watched.page
        nav(watched, "Demandes d'habilitation")
        row = page.locator("table tbody tr", has_text=agent_name)
        assert "Montreuil" in row.inner_text() and "CCAS de Montreuil" in row.inner_text()
        row.get_by_label("Décision").select_option("accorder")
        row.get_by_label("Sous le mandat").select_option(label=reference)
        row.get_by_role("button", name="Valider").click()
        page.wait_for_load_state()
        assert "Demande accordée." in main_text(watched)
        row = page.locator("table tbody tr", has_text=agent_name)
        assert "accordée" in row.locator("td").nth(4).inner_text()
        assert row.get_by_role("button").count() == 0

        with App(app) as session:
            request = session.get(HabilitationRequest, request_id)
            assert request.status is RequestStatus.ACCORDEE
            assert request.decided_by_id == aptic_admin_id
            habilitation = session.get(Habilitation, request.habilitation_id)
            assert (habilitation.user_id, habilitation.structure_id, habilitation.mandate_id) == (
                agent_id, ccas_id, mandate_id)
            assert habilitation.granted_by_id == aptic_admin_id
            assert habilitation.revoked_on is None
            habilitation_ref = references.habilitation(habilitation)
            ccas_name = habilitation.structure.name

        # After: the same prescripteur's desk names the habilitation and the mandate.
        desk.page.reload()
        text = desk.page.inner_text("main")
        assert "Vous ne pouvez pas remettre de pass" not in text
        # by a reference people can say (agent, structure, mandate), not a database id
        assert habilitation_ref == (f"Habilitation de {agent_name} pour {ccas_name} "
                                    f"(mandat {reference})")
        assert habilitation_ref in text and "Habilitation n°" not in text
        assert_clean(desk)
    finally:
        desk.context.close()
    assert_clean(watched)


# ------------------------------------------------------------------ 4. the desk

def test_prescripteur_hands_out_a_carnet(app, watched):
    with App(app) as session:
        ccas = tenant(session, "neuilly-plaisance-ccas")
        stock = distribution.structure_stock(session, ccas)[programme(session).id]
        number, carnets_before = stock[0][0], len(stock)
        prescripteur_id = user(session, "prescripteur.neuilly-plaisance-ccas").id
        habilitation = session.execute(sa.select(Habilitation).where(
            Habilitation.user_id == prescripteur_id,
            Habilitation.structure_id == ccas.id)).scalar_one()
        habilitation_id, habilitation_ref = habilitation.id, references.habilitation(habilitation)
        ccas_id, before = ccas.id, session.execute(sa.select(sa.func.count()).select_from(
            Distribution)).scalar()

    login(watched, app, "prescripteur.neuilly-plaisance-ccas")
    page = watched.page
    nav(watched, "Remettre un carnet")
    assert habilitation_ref in page.inner_text("main")
    card = page.locator("section.card", has_text="AMI 2")
    assert f"Stock de la structure : {carnets_before} carnet(s)" in card.inner_text()
    assert card.get_by_label("Numéro du carnet remis").input_value() == str(number)
    card.get_by_label("Seniors").check()
    card.get_by_label("Démarches administratives en ligne").check()
    card.get_by_label("Envoyer et recevoir des courriels").check()
    card.get_by_label("Tranche d'âge").select_option(label="60 ans et plus")
    card.get_by_label("Équipement").select_option(label="Smartphone seulement")
    card.get_by_label("Orienté par").select_option(label="Un facilitateur")
    card.get_by_role("button", name="Remettre le carnet").click()
    page.wait_for_load_state()
    text = main_text(watched)
    match = re.search(rf"Carnet n° {number} remis \(10 pass\)\. Code bénéficiaire à inscrire "
                      r"sur le carnet : ([A-Z0-9-]+)", text)
    assert match, text
    code = match.group(1)
    assert f"Stock de la structure : {carnets_before - 1} carnet(s)" in text
    assert f"carnet n° {number}, 10 pass — code {code}" in page.locator(
        "main ul").last.inner_text()

    with App(app) as session:
        done = session.execute(sa.select(Distribution).order_by(Distribution.id.desc())
                               ).scalars().first()
        assert session.execute(sa.select(sa.func.count()).select_from(Distribution)
                               ).scalar() == before + 1
        assert done.beneficiary.code == code
        assert (done.user_id, done.structure_id, done.habilitation_id, done.pass_count) == (
            prescripteur_id, ccas_id, habilitation_id, 10)
        assert done.target_public == "seniors"
        assert sorted(done.needs) == ["courriel", "demarches"]
        answers = dict(session.execute(sa.select(QuestionnaireAnswer.question,
                                                 QuestionnaireAnswer.answer).where(
            QuestionnaireAnswer.distribution_id == done.id)).all())
        assert answers == {"tranche_age": "60_plus", "equipement": "smartphone",
                           "orientation": "facilitateur"}
        states = session.execute(sa.select(Pass.state).join(Carnet).where(
            Carnet.number == number, Carnet.programme_id == done.programme_id)).scalars().all()
        assert states == [PassState.DISTRIBUE] * 10
        entry, = ledger_entries(session, "distribution", pass_first_id=done.pass_first_id)
        assert (entry.count, entry.actor_user_id, entry.pass_last_id) == (
            10, prescripteur_id, done.pass_last_id)
        assert_ledger_intact(session)
    assert_clean(watched)


# ------------------------------------------------------------------ 5. scanning on a phone

def _bondy_pass(app, carnets=(901,)):
    with App(app) as session:
        ids = hand_out_carnets(session, commune_slug="bondy", structure_slug="bondy-ccas",
                               prescripteur="prescripteur.bondy-ccas", carnets=carnets)
        session.commit()
        return ids


def _assert_scanned(app, pass_id, *, structure_slug, operateur, channel):
    with App(app) as session:
        found = session.get(Pass, pass_id)
        structure = tenant(session, structure_slug)
        assert (found.state, found.holder_id) == (PassState.SCANNE, structure.id)
        scan, = session.execute(sa.select(Scan).where(Scan.pass_id == pass_id)).scalars().all()
        assert (scan.structure_id, scan.user_id, scan.channel, scan.cancelled_at) == (
            structure.id, user(session, operateur).id, channel, None)
        entry, = ledger_entries(session, "scan", pass_first_id=pass_id)
        assert (entry.ref_type, entry.ref_id, entry.actor_user_id) == (
            "scan", scan.id, scan.user_id)
        assert_ledger_intact(session)
        return scan


def test_operateur_validates_a_pass_by_manual_entry_on_a_phone(app, watched):
    pass_id = _bondy_pass(app)[0]
    with App(app) as session:
        _payload, serial, vcode = qr_code_of(session, pass_id)

    page = watched.page
    assert page.viewport_size == MOBILE == {"width": 360, "height": 740}
    login(watched, app, "operateur.bondy-centre-social")
    nav(watched, "Scanner")
    assert page.inner_text("h1") == "Scanner un pass"
    page.get_by_text("Saisie manuelle (numéro + code de vérification)").click()
    page.get_by_label("Numéro du pass", exact=True).fill(serial)
    page.get_by_label("Code de vérification").fill(vcode)
    page.get_by_label("Service rendu").select_option(
        label="Démarches administratives en ligne (1 pass, 60 min)")
    page.get_by_role("button", name="Valider", exact=True).click()
    result = page.locator("#scan-result .scan-ok")
    result.wait_for()
    text = result.inner_text()
    assert "Pass validé" in text and serial in text
    assert "Démarches administratives en ligne — " in text
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"] + 1
    _assert_scanned(app, pass_id, structure_slug="bondy-centre-social",
                    operateur="operateur.bondy-centre-social", channel=Channel.SAISIE)
    # The recent scans list, refreshed on the next visit, shows it.
    page.reload()
    assert serial in page.inner_text("main")
    assert_clean(watched)


def qr_image(payload: str, module_px: int = 10):
    """The pass's QR code as printed (``portal.printing.qr``), as a Pillow
    image with its quiet zone."""
    rows = qr_rows(payload)
    side = len(rows) + 2 * QUIET_ZONE
    image = Image.new("L", (side, side), 255)
    for y, row in enumerate(rows):
        for x, module in enumerate(row):
            if module == "1":
                image.putpixel((x + QUIET_ZONE, y + QUIET_ZONE), 0)
    return image.resize((side * module_px, side * module_px), Image.NEAREST)


def write_y4m(path: Path, picture, size=(640, 480), frames: int = 4, fps: int = 10) -> Path:
    """A YUV4MPEG2 video (4:2:0, full-range JPEG YCbCr as Pillow converts
    it) showing ``picture`` centred on a light-grey background — what
    chromium's ``--use-file-for-fake-video-capture`` plays in a loop."""
    width, height = size
    frame = Image.new("RGB", size, (235, 235, 235))
    frame.paste(picture.convert("RGB"), ((width - picture.width) // 2,
                                         (height - picture.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    chroma = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(chroma, Image.BOX).tobytes() + \
        cr.resize(chroma, Image.BOX).tobytes()
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)
    return path


@pytest.fixture
def camera_phone(request, chromium, live_server, tmp_path):
    """A phone whose camera films a file: a second chromium started with a
    fake capture device. ``camera_phone(y4m_path)`` returns a PageWatch."""
    started = []

    def start(video: Path) -> PageWatch:
        browser = chromium.browser_type.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={video}"])
        watch = PageWatch(browser, live_server)
        started.append((browser, watch))
        return watch

    yield start
    failed = getattr(request.node, "rep_call", None)
    for browser, watch in started:
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            watch.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-camera.png"),
                                  full_page=True)
            (ARTIFACTS / f"{request.node.name}-camera.console.txt").write_text(
                "\n".join(watch.console))
        watch.context.close()
        browser.close()


def test_operateur_validates_a_pass_with_the_phone_camera(app, camera_phone, tmp_path):
    pass_id = _bondy_pass(app)[0]
    with App(app) as session:
        payload, serial, _vcode = qr_code_of(session, pass_id)
    picture = qr_image(payload)
    assert picture.height <= 480
    # The picture really is the pass's QR code (zxing-cpp, as the server's photo path).
    assert [r.text for r in zxingcpp.read_barcodes(picture)] == [payload]
    phone = camera_phone(write_y4m(tmp_path / "pass.y4m", picture))
    page = phone.page
    assert page.viewport_size == MOBILE
    # Chromium has a native BarcodeDetector on some platforms only: remove it
    # so that the vendored polyfill (wasm served from /static/) always decodes.
    page.add_init_script("delete globalThis.BarcodeDetector;")
    wasm = []
    page.on("request", lambda r: wasm.append(r.url) if r.url.endswith(".wasm") else None)
    login(phone, app, "operateur.bondy-centre-social")
    nav(phone, "Scanner")
    page.get_by_label("Valider dès la lecture").check()
    page.get_by_role("button", name="Scanner avec la caméra").click()
    result = page.locator("#scan-result .scan-ok")
    result.wait_for(timeout=30_000)
    text = result.inner_text()
    assert "Pass validé" in text and serial in text
    assert page.locator("#camera-video").is_visible()
    assert "Présentez le QR code du pass devant la caméra." in page.inner_text("#camera-status")
    # The pass stays in front of the camera: it is not sent again (it was, every
    # 4 s, turning "Pass validé" into "Pass déjà utilisé" and flagging a double scan).
    page.wait_for_timeout(4500)
    assert "Pass validé" in page.inner_text("#scan-result"), page.inner_text("#scan-result")
    assert any(url.endswith("/static/vendor/barcode-detector/zxing_reader.wasm") for url in wasm)
    _assert_scanned(app, pass_id, structure_slug="bondy-centre-social",
                    operateur="operateur.bondy-centre-social", channel=Channel.CAMERA)
    with App(app) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Anomaly).where(
            Anomaly.kind == AnomalyKind.DOUBLE_SCAN)).scalar() == 0
    assert_clean(phone)


# ------------------------------------------------------------------ 6. second scan

# A refused scan is answered with its HTTP status (409 here) and htmx swaps
# the French fragment in (base.html's responseHandling marks 4xx as errors):
# chromium and htmx both log that response on the console, by design.
REFUSAL_LOGS = ("the server responded with a status of 409",
                "Response Status Error Code 409 from /structure/bondy-mediatheque/scan/valider")


def _scan_with_usb_scanner(page, payload):
    """A USB scanner types the QR payload into the focused field, then Enter."""
    page.get_by_label("Valider dès la lecture").check()
    page.get_by_label("QR code ou numéro du pass").fill(payload)
    page.get_by_label("QR code ou numéro du pass").press("Enter")


def test_second_scan_of_a_pass_shows_where_and_when_it_was_used(app, watched, chromium,
                                                                live_server):
    pass_id = _bondy_pass(app)[0]
    with App(app) as session:
        payload, serial, _vcode = qr_code_of(session, pass_id)
        mediatheque_id = tenant(session, "bondy-mediatheque").id

    login(watched, app, "operateur.bondy-centre-social")
    nav(watched, "Scanner")
    _scan_with_usb_scanner(watched.page, payload)
    watched.page.locator("#scan-result .scan-ok").wait_for()
    assert "Pass validé" in watched.page.inner_text("#scan-result")
    scan = _assert_scanned(app, pass_id, structure_slug="bondy-centre-social",
                           operateur="operateur.bondy-centre-social", channel=Channel.DOUCHETTE)
    assert_clean(watched)

    other = PageWatch(chromium, live_server)       # another opérateur, another phone
    try:
        login(other, app, "operateur.bondy-mediatheque")
        nav(other, "Scanner")
        _scan_with_usb_scanner(other.page, payload)
        refusal = other.page.locator("#scan-result .scan-ko[role=alert]")
        refusal.wait_for()
        text = refusal.inner_text()
        assert "Pass déjà utilisé" in text
        assert (f"Pass déjà utilisé le {format_datetime(scan.scanned_at)} chez Centre social et "
                f"numérique de Bondy.") in text
        with App(app) as session:
            found = session.get(Pass, pass_id)
            assert found.state is PassState.SCANNE
            assert session.execute(sa.select(sa.func.count()).select_from(Scan).where(
                Scan.pass_id == pass_id)).scalar() == 1
            assert len(ledger_entries(session, "scan", pass_first_id=pass_id)) == 1
            anomaly, = session.execute(sa.select(Anomaly).where(
                Anomaly.kind == AnomalyKind.DOUBLE_SCAN)).scalars().all()
            assert (anomaly.pass_id, anomaly.structure_id) == (pass_id, mediatheque_id)
            assert serial == anomaly.serial
        assert_clean(other, allowed=REFUSAL_LOGS)
    finally:
        other.context.close()


# ------------------------------------------------------------------ 7. contre-paiement

def test_aptic_closes_last_month_and_validates_the_statement(app, watched):
    when = last_month_noon()
    period = when.strftime("%Y-%m")
    with App(app) as session:
        ids = hand_out_carnets(session, commune_slug="bondy", structure_slug="bondy-ccas",
                               prescripteur="prescripteur.bondy-ccas", carnets=[902],
                               when=when - dt.timedelta(days=1))
        scanned = ids[:3]
        scan_through_domain(session, scanned, structure_slug="bondy-centre-social",
                            operateur="operateur.bondy-centre-social", when=when)
        session.commit()
        structure_id = tenant(session, "bondy-centre-social").id
        admin_id = user(session, "aptic.admin").id
        assert session.execute(sa.select(sa.func.count()).select_from(Statement)).scalar() == 0

    login(watched, app, "aptic.admin")
    page = watched.page
    page.on("dialog", lambda dialog: dialog.accept())     # "Valider ce relevé ?"
    nav(watched, "Contre-paiement")
    assert page.inner_text("h1") == "Contre-paiement mensuel des opérateurs"
    # The month offered is the previous one in Paris (it used the server's
    # local date, often UTC: the wrong month in the first hours of a month).
    assert page.get_by_label("Mois à clôturer (AAAA-MM)").input_value() == period
    page.get_by_role("button", name="Clôturer le mois").click()
    page.wait_for_load_state()
    assert f"Mois {period} clôturé : 1 relevé(s) créé(s) ou complété(s)." in main_text(watched)
    row = page.locator("table tbody tr", has_text="Centre social et numérique de Bondy")
    cells = row.locator("td").all_inner_texts()
    assert cells == [period, "Centre social et numérique de Bondy", "3", format_eur(3000),
                     "brouillon"]

    row.get_by_role("link", name=period).click()
    page.wait_for_load_state()
    assert page.inner_text("h1") == f"Relevé {period} — Centre social et numérique de Bondy"
    assert "Statut : brouillon" in page.inner_text("main")
    assert page.locator("table tbody tr").count() == 3
    page.get_by_role("button", name="Valider le relevé").click()
    page.wait_for_load_state()
    text = main_text(watched)
    assert "Relevé validé : ses pass sont mis en contre-paiement." in text
    assert "Statut : validé" in text
    # Paid by a SEPA run and the bank's statement (issue 17), never by typing a reference.
    assert "À payer par une campagne de virements SEPA" in text

    with App(app) as session:
        statement = session.execute(sa.select(Statement)).scalar_one()
        assert (statement.structure_id, statement.period, statement.status) == (
            structure_id, period, StatementStatus.VALIDE)
        assert statement.validated_by_id == admin_id and statement.total_cents == 3000
        states = session.execute(sa.select(Pass.id, Pass.state).where(Pass.id.in_(ids))
                                 .order_by(Pass.id)).all()
        assert [s for _id, s in states] == [PassState.CONTRE_PAIEMENT] * 3 + \
            [PassState.DISTRIBUE] * 7
        entries = ledger_entries(session, "contre_paiement", ref_type="releve",
                                 ref_id=statement.id)
        assert sum(e.count for e in entries) == 3
        assert sum(e.amount_cents for e in entries) == 3000
        assert {e.actor_user_id for e in entries} == {admin_id}
        assert_ledger_intact(session)
    assert_clean(watched)


# ------------------------------------------------------------------ 8. abondement

def _neuilly_almost_at_half(session):
    """Neuilly-Plaisance holds its 5 000-pass amorçage: hand out 250 carnets
    and consume 2 490 pass through custody (what thousands of scans and
    monthly statements would do), and scan 10 more last month, still to be
    mis en contre-paiement. Returns the pass ids of those 10."""
    conv = convention(session, "neuilly-plaisance")
    prog, neuilly = conv.programme, conv.commune
    ccas, mediatheque = (tenant(session, "neuilly-plaisance-ccas"),
                         tenant(session, "neuilly-plaisance-mediatheque"))
    allocation.split_carnets(session, conv, ccas, 200, actor=Actor(None, neuilly.id))
    prescripteur = Actor(user(session, "prescripteur.neuilly-plaisance-ccas").id, ccas.id)
    custody.move(session, prog, nature=Nature.DISTRIBUTION,
                 criteria=[Pass.holder_id == ccas.id, Pass.state == PassState.REPARTI],
                 to_holder_id=ccas.id, actor=prescripteur)
    handed_out = session.execute(sa.select(Pass.id).where(
        Pass.holder_id == ccas.id, Pass.state == PassState.DISTRIBUE).order_by(Pass.id)
    ).scalars().all()
    assert len(handed_out) == 2500
    consumed, last = handed_out[:2490], handed_out[2490:]
    operateur = Actor(user(session, "operateur.neuilly-plaisance-mediatheque").id, mediatheque.id)
    for nature in (Nature.SCAN, Nature.CONTRE_PAIEMENT):
        custody.move(session, prog, nature=nature, criteria=[Pass.id.in_(consumed)],
                     to_holder_id=mediatheque.id, actor=operateur)
    scan_through_domain(session, last, structure_slug="neuilly-plaisance-mediatheque",
                        operateur="operateur.neuilly-plaisance-mediatheque",
                        when=last_month_noon())
    return last


def test_mgp_sees_neuilly_become_an_abondement_candidate(app, watched):
    with App(app) as session:
        _neuilly_almost_at_half(session)
        session.commit()
        prog, conv_id = programme(session), convention(session, "neuilly-plaisance").id
        admin_id = user(session, "mgp.admin").id

    page = open_allocation_as_mgp(watched, app, prog)
    follow_up = page.locator("table", has=page.locator("th", has_text="Conditions d'amorçage"))

    def neuilly_row() -> list[str]:
        return follow_up.locator("tbody tr", has_text="Neuilly-Plaisance").locator(
            "td").all_inner_texts()

    cells = neuilly_row()
    assert cells[2:5] == [count(5000), count(2490), format_pct(49.8)], cells
    assert "10 pass consommés manquent pour atteindre 50 %." in cells[5]
    assert follow_up.get_by_role("button", name="Confirmer l'abondement").count() == 0

    # #APTIC validates last month's statement: the 10 pass scanned become
    # "mis en contre-paiement", i.e. consumed (convention art. 5).
    with App(app) as session:
        statement, = settlement.close_month(session, last_month_noon().strftime("%Y-%m"))
        settlement.validate(session, statement, actor=Actor(None, prog.issuer_id))
        session.commit()

    page.reload()
    cells = neuilly_row()
    assert cells[2:5] == [count(5000), count(2500), format_pct(50)], cells
    assert f"Candidate ({count(2500)} pass)" in cells[5]
    follow_up.locator("tbody tr", has_text="Neuilly-Plaisance").get_by_role(
        "button", name="Confirmer l'abondement").click()
    page.wait_for_load_state()
    assert (f"Abondement de {count(2500)} pass confirmé pour Neuilly-Plaisance."
            in main_text(watched))
    assert "Une tranche est déjà en cours pour cette commune." in neuilly_row()[5]

    with App(app) as session:
        tranche = session.execute(sa.select(Tranche).where(
            Tranche.convention_id == conv_id, Tranche.kind == TrancheKind.ABONDEMENT)
        ).scalar_one()
        assert (tranche.status, tranche.quantity, tranche.confirmed_by_id) == (
            TrancheStatus.CONFIRMEE, 2500, admin_id)
        assert tranche.due_on is not None
        assert_ledger_intact(session)
    committed = page.locator("ul.figures li", has_text="Tranches confirmées").inner_text()
    assert count(7500) in committed          # Neuilly's amorçage + this abondement
    assert_clean(watched)
