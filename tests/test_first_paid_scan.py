"""Day one, the joint « Must show » of issue 13: from an EMPTY production-mode
database to a FIRST PAID SCAN through the pages alone. It continues the
journey of ``test_onboarding`` (setup → … → a place approved) with the
convention and the amorçage, the carnets, the mandate and the habilitation,
the desk, the scan, and the monthly contre-paiement. Every step GETs a page
and POSTs one of its forms with what the page shows; ids come from the HTML.
The only pretence is the date of the month's closing (a clock, not data)."""
from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from conftest import Browser
from portal.domain import clock
from portal.extensions import db
from sepa_helpers import MANDATE_IBAN, camt_from_pain
from portal.models import (Carnet, Distribution, Habilitation, Mandate, Pass, PassState,
                           Statement)
# production_app: the empty production-mode database of the first half.
from test_onboarding import PASSWORD, _accept, _to_an_approved_place, production_app  # noqa: F401

class _Forms(HTMLParser):
    """The forms of a page as a browser sees them: action, and the value each
    field would send untouched (first option of a select, checked boxes)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "options": {}})
        if not self.forms:
            return
        fields = self.forms[-1]["fields"]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields.setdefault(a["name"], []).append(a.get("value", "on"))
                self.forms[-1]["options"].setdefault(a["name"], []).append(a.get("value"))
            elif kind not in ("submit", "button", "file"):
                fields[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select:
            self.forms[-1]["options"].setdefault(self._select, []).append(a.get("value", ""))
            if "selected" in a or self._select not in fields:
                fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            fields[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def _form(page: str, action: str, choose=None) -> dict:
    """The one form of ``page`` whose action ends with ``action`` (and that
    ``choose`` picks when the page shows several)."""
    parser = _Forms()
    parser.feed(page)
    found = [f for f in parser.forms if re.search(action + r"$", f["action"])
             and (action or not f["action"]) and (choose is None or choose(f["fields"]))]
    assert len(found) == 1, (action, [f["action"] for f in parser.forms])
    return found[0]


def _submit(person, url: str, action: str, expect: int = 303, choose=None, stale=False,
            **changes):
    """GET ``url``, fill the form whose action matches ``action`` as shown,
    change what the person types, POST it (the page's own CSRF token), and
    follow the redirect like the browser."""
    page = person.get(url)
    assert page.status_code == 200, (url, page.status_code)
    form = _form(page.text, action, choose)
    data = {**form["fields"], **changes}
    response = person.client.post(form["action"], data=data)
    if stale:                  # a sensitive action after the confirmation went stale
        assert response.status_code == 303 and "/confirmer-mot-de-passe" in response.location
        return response
    assert response.status_code == expect, (form["action"], response.status_code,
                                            _alert(response.text))
    if expect == 303:
        landing = person.get(response.location)
        assert landing.status_code == 200
        return landing
    return response


def _in_menu(person, start: str, *paths: str) -> None:
    page = person.get(start)
    assert page.status_code == 200, start
    missing = [p for p in paths if f'href="{p}"' not in page.text]
    assert not missing, (start, missing)


def _alert(page: str) -> str:
    found = re.findall(r'(?:role="alert"|class="[^"]*(?:error|flash)[^"]*")[^>]*>(.*?)<', page, re.S)
    return " | ".join(x.strip() for x in found if x.strip()) or page[:600]


def _link(page: str, pattern: str) -> str:
    """The href of the first link matching ``pattern`` (a regex on the path)."""
    match = re.search(rf'href="({pattern})"', page)
    assert match, pattern
    return match.group(1)


@pytest.mark.slow          # ~25 s: two dozen people and pages, a PDF rasterised
def test_from_an_empty_database_to_a_first_paid_scan_through_the_pages(
        production_app, caplog, monkeypatch, tmp_path):  # noqa: F811 (fixture)
    app = production_app
    # A small amorçage (2 carnets) keeps the journey short; the rules are the same.
    journey = _to_an_approved_place(app, caplog, amorcage_size="20")
    aptic, mgp_admin, referent = journey["aptic_admin"], journey["mgp_admin"], journey["referent"]
    ccas_admin, applicant = journey["ccas_admin"], journey["applicant"]
    base, programme_id = journey["base"], journey["programme_id"]
    ccas, place = journey["ccas"], journey["place"]
    today = clock.today().isoformat()
    # Every page used below is a link of its space's menu or pages (no typed URL).
    aptic_pages = ["hubs", "emission", "expeditions", "mandats", "habilitations/demandes",
                   "operateurs", "contre-paiement"]
    _in_menu(aptic, "/mandataire/aptic/", *[f"/mandataire/aptic/{p}" for p in aptic_pages])
    _in_menu(mgp_admin, f"{base}/programmes", f"{base}/allocation/{programme_id}",
             f"{base}/programmes/{programme_id}")
    _in_menu(referent, "/commune/montreuil/", "/commune/montreuil/conventions",
             "/commune/montreuil/habilitations")
    _in_menu(ccas_admin, f"/structure/{ccas.slug}/", f"/structure/{ccas.slug}/remise")
    _in_menu(applicant, f"/structure/{place.slug}/", f"/structure/{place.slug}/scan",
             f"/structure/{place.slug}/operateur")

    # -- #APTIC registers the Hub and invites its agent (gap built: /mandataire/<>/hubs).
    _submit(aptic, "/mandataire/aptic/hubs", "/hubs", name="Hub Francil'IN",
            address_line="5 rue Pleyel", postal_code="93200", city="Saint-Denis",
            agent_email="agent@francilin.example")
    assert "Hub Francil'IN" in aptic.get("/mandataire/aptic/hubs").text
    hub_agent = _accept(app, "agent@francilin.example", "Hugo Hub", caplog)
    hub_home = hub_agent.get("/espaces").text
    hub_base = re.search(r'href="(/hub/[a-z0-9-]+)/"', hub_home).group(1)
    _in_menu(hub_agent, f"{hub_base}/", f"{hub_base}/avis")

    # -- The Métropole creates the conventions of its perimeter and records both signatures.
    allocation_url = f"{base}/allocation/{programme_id}"
    page = _submit(mgp_admin, allocation_url, "/conventions")
    assert "2 convention(s) créée(s)" in page.text
    page = mgp_admin.get(allocation_url).text
    convention_url = re.search(rf'href="({base}/conventions/(\d+))">Montreuil<', page).group(1)
    convention_id = convention_url.rsplit("/", 1)[1]
    for party, signatory in (("commune", "Le maire de Montreuil"),
                             ("metropole", "Le président de la Métropole")):
        page = _submit(mgp_admin, convention_url, "/signature", party=party, signed_on=today,
                       signatory=signatory)
        assert "Signature enregistrée" in page.text

    # -- The référent sends its contacts (art. 4, 2nd condition) from the commune's page.
    conventions = referent.get("/commune/montreuil/conventions").text
    commune_convention = _link(conventions, rf"/commune/montreuil/conventions/{convention_id}")
    _submit(referent, commune_convention, "/referent", referent_name="Rémi Référent",
            referent_email="referent@montreuil.example", referent_phone="01 48 70 60 00")

    # Signed, référent known: the amorçage is not offered yet (the Hub's opinions are missing).
    page = referent.get(commune_convention).text
    assert "Demander l'amorçage" not in page and f"{commune_convention}/amorcage" not in page

    # -- The Hub gives its two favourable opinions (art. 4, 3rd and 4th conditions).
    for kind in ("reseau", "capacite"):
        page = hub_agent.get(f"{hub_base}/avis").text
        assert "Montreuil" in page
        form = _form(page, rf"/avis/{convention_id}")
        assert kind in form["options"]["kind"]
        _submit(hub_agent, f"{hub_base}/avis", rf"/avis/{convention_id}", kind=kind,
                verdict="favorable", given_on=today,
                evidence=f"Courriel du Hub ({kind}) au référent et à la Métropole")

    # -- #APTIC orders carnets; the Métropole records its numéro de mandat; #APTIC activates.
    page = _submit(aptic, "/mandataire/aptic/emission", "/emission/commandes", carnet_count="5")
    assert "Commande n°" in page.text
    programme_page = f"{base}/programmes/{programme_id}"
    _submit(mgp_admin, programme_page, r"/commandes/\d+/mandat",
            payment_reference="MANDAT-2026-0042")
    page = _submit(aptic, "/mandataire/aptic/emission", r"/emission/commandes/\d+/activer")
    assert "pass entrent dans le stock" in page.text

    # -- The commune requests the amorçage; the Métropole confirms it.
    page = referent.get(commune_convention).text
    assert "Demander l'amorçage (20 pass)" in page
    _submit(referent, commune_convention, "/amorcage")
    page = _submit(mgp_admin, allocation_url, r"/tranches/\d+/confirmer")
    assert "Amorçage confirmé pour Montreuil" in page.text

    # -- #APTIC ships the tranche (the page suggests the ranges); the référent receives it.
    page = aptic.get("/mandataire/aptic/expeditions").text
    form = _form(page, r"/expeditions/\d+")
    assert form["fields"]["ranges"]                                   # a suggestion is shown
    _submit(aptic, "/mandataire/aptic/expeditions", r"/expeditions/\d+")
    _submit(referent, commune_convention, r"/tranches/\d+/reception")

    # -- The référent gives the CCAS its carnets (répartition among prescripteurs, art. 7).
    repartition = f"{commune_convention}/repartition"
    form = _form(referent.get(repartition).text, "/repartition")
    assert str(ccas.id) in form["options"]["structure_id"]
    _submit(referent, repartition, "/repartition", direction="donner",
            structure_id=str(ccas.id), carnet_count="2")

    # -- #APTIC creates the mandate (CGCT L1611-7 IV) and signs it.
    mandates = "/mandataire/aptic/mandats"
    end = (clock.today() + dt.timedelta(days=365)).isoformat()
    _submit(aptic, mandates, "/mandats", reference="MGP-APTIC-2026-01",
            accord_cadre_reference="AC-2026-PN", accord_cadre_ends_on=end, starts_on=today,
            ends_on=end, advance_ceiling="5000")
    mandate_url = _link(aptic.get(mandates).text, r"/mandataire/aptic/mandats/\d+")
    _submit(aptic, mandate_url, r"/signer", signed_on=today)

    # -- The commune asks #APTIC to habilitate the CCAS agent; #APTIC grants it under the
    #    mandate (a sensitive action: the password is asked again when not recent).
    _submit(referent, "/commune/montreuil/habilitations", "/habilitations/demandes",
            ends_on=end)
    app.config["REAUTH_MINUTES"] = 0
    response = _submit(aptic, "/mandataire/aptic/habilitations/demandes",
                       r"/habilitations/demandes/\d+", decision="accorder", stale=True)
    app.config["REAUTH_MINUTES"] = 10
    _confirm_password(aptic, response.location)
    _submit(aptic, "/mandataire/aptic/habilitations/demandes", r"/habilitations/demandes/\d+",
            decision="accorder")

    # -- The prescripteur hands out a carnet at the desk.
    desk = f"/structure/{ccas.slug}/remise"
    page = ccas_admin.get(desk).text
    form = _form(page, "/remise")
    carnet = form["fields"]["carnet_number"]
    answers = {name: options[1] for name, options in form["options"].items()
               if form["fields"].get(name) == "" and options[0] == ""}   # the questionnaire
    assert answers
    _submit(ccas_admin, desk, "/remise", target_public=form["options"]["target_public"][0],
            needs=form["options"]["needs"][:1], **answers)
    with app.app_context():
        handed = db.session.execute(sa.select(Pass).join(Carnet).where(
            Carnet.number == int(carnet)).order_by(Pass.index_in_carnet)).scalars().all()
        assert len(handed) == 10 and {p.state for p in handed} == {PassState.DISTRIBUE}
        # Made under the habilitation #APTIC granted, under the mandate created above.
        distribution = db.session.execute(sa.select(Distribution)).scalar_one()
        habilitation = db.session.get(Habilitation, distribution.habilitation_id)
        mandate = db.session.get(Mandate, distribution.mandate_id)
        assert habilitation.mandate_id == mandate.id and mandate.reference == "MGP-APTIC-2026-01"
        assert mandate.mandant_id == journey["mgp"].id
        assert distribution.structure_id == ccas.id


    # -- The place describes its service and its IBAN; #APTIC validates the IBAN.
    lieu = f"/structure/{place.slug}/operateur"
    _submit(applicant, lieu, "/operateur/identite", legal_representative="Fatou Diallo")
    _submit(applicant, lieu, "/operateur/services", name="Aide aux démarches en ligne")
    _submit(applicant, lieu, "/operateur/iban", holder="La Fabrique numérique",
            iban="FR14 2004 1010 0505 0001 3M02 606", bic="PSSTFRPPPAR")
    app.config["REAUTH_MINUTES"] = 10
    page = _submit(aptic, "/mandataire/aptic/operateurs", r"/iban/\d+/examen", accept="1")

    # -- The carnets as printed by #APTIC: the QR codes of the carnet handed out.
    page = _submit(aptic, "/mandataire/aptic/emission", "/impressions",
                   choose=lambda fields: fields.get("first_carnet"))    # the order's carnets
    pdf = aptic.get(_link(page.text, r"/mandataire/aptic/impressions/\d+/carnets.pdf"))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    codes = _qr_codes(pdf.data, tmp_path)
    pdf.close()                                       # the file sent by send_file
    printed = [c for c in codes if f"/P/{handed[0].serial}-".upper() in c.upper()]
    assert len(printed) == 1, (handed[0].serial, codes[:3])

    # -- The opérateur (another person than the prescripteur, convention art. 8) scans it.
    scan = f"/structure/{place.slug}/scan"
    form = _form(applicant.get(scan).text, "/scan/valider")
    page = _submit(applicant, scan, "/scan/valider", expect=200, code=printed[0],
                   service_id=form["fields"]["service_id"])
    assert "Pass validé" in page.text or handed[0].serial in page.text, _alert(page.text)
    with app.app_context():
        assert db.session.get(Pass, handed[0].id).state is PassState.SCANNE

    # -- Next month (a pretended date): #APTIC closes the month and validates the statement.
    import portal.domain.settlement as settlement_rules
    import portal.tenants.mandataire.funds as funds_views
    import portal.tenants.mandataire.operateurs as statement_views
    month_after = dt.datetime.now(dt.timezone.utc).replace(day=1) + dt.timedelta(days=32)
    month_after = month_after.replace(day=2, hour=9)
    monkeypatch.setattr(settlement_rules, "utcnow", lambda: month_after)
    for views in (statement_views, funds_views):
        monkeypatch.setattr(views, "today", lambda: month_after.date())
    this_month = clock.today().strftime("%Y-%m")
    form = _form(aptic.get("/mandataire/aptic/contre-paiement").text, "/contre-paiement/cloture")
    assert form["fields"]["period"] == this_month
    page = _submit(aptic, "/mandataire/aptic/contre-paiement", "/contre-paiement/cloture")
    assert f"Mois {this_month} clôturé : 1 relevé(s)" in page.text
    statement_url = _link(page.text, r"/mandataire/aptic/contre-paiement/\d+")
    app.config["REAUTH_MINUTES"] = 0                  # the last confirmation is now too old
    response = _submit(aptic, statement_url, "/valider", stale=True)
    app.config["REAUTH_MINUTES"] = 10
    _confirm_password(aptic, response.location)
    page = _submit(aptic, statement_url, "/valider")
    assert "10,00" in page.text

    # -- #APTIC pays it by SEPA transfer from the mandate's account (issue 17): the account,
    #    the Métropole's advance, the run, the pain.001 file; the bank's camt.053 marks it paid.
    funds_url = _link(aptic.get(mandate_url).text, rf"{mandate_url}/fonds")
    _submit(aptic, funds_url, "/fonds/compte", account_holder="#APTIC — mandat MGP",
            account_iban=MANDATE_IBAN, account_bic="BDFEFRPPCCT")
    _submit(aptic, funds_url, "/fonds/avances", reference="AV-MGP-2026-1", amount="1 000,00")
    page = _submit(aptic, funds_url, "/virements")
    assert "Campagne préparée : 1 virement(s)" in page.text
    form = _form(page.text, r"/virements/\d+/export")
    pain = aptic.client.post(form["action"], data=form["fields"])
    assert pain.status_code == 200 and pain.mimetype == "application/xml", pain.text[:300]
    assert b"<CtrlSum>10.00</CtrlSum>" in pain.data
    bank_file = camt_from_pain(pain.data, booked=month_after.date(), prefix="BQJ")
    form = _form(aptic.get(funds_url).text, "/releves-bancaires")
    response = aptic.client.post(form["action"], data={
        **form["fields"], "fichier": (io.BytesIO(bank_file), "releve-camt053.xml")},
        content_type="multipart/form-data")
    assert response.status_code == 303, _alert(response.text)
    page = aptic.get(response.location).text
    assert "Relevé importé : 1 relevé(s) payé(s), 0 virement(s) retourné(s)" in page

    with app.app_context():
        statement = db.session.execute(sa.select(Statement)).scalar_one()
        assert statement.status.value == "paye" and statement.total_cents == 1000
        assert statement.paid_on == month_after.date()
        assert db.session.get(Pass, handed[0].id).state is PassState.PAYE
        assert {p.state for p in handed[1:]} == {PassState.DISTRIBUE}
    assert "10,00" in aptic.get(statement_url).text
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0 and "Journal intègre" in result.output, result.output


def _qr_codes(pdf: bytes, tmp_path) -> list[str]:
    """What a phone reads from the printed carnets: every QR of the PDF."""
    import subprocess

    import zxingcpp
    from PIL import Image
    source = tmp_path / "carnets.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", str(source),
                    str(tmp_path / "page")], check=True)
    codes = []
    for image in sorted(tmp_path.glob("page*.png")):
        with Image.open(image) as picture:
            codes += [r.text for r in zxingcpp.read_barcodes(picture)]
    return codes


def _confirm_password(person, location: str) -> None:
    page = person.get(location)
    assert page.status_code == 200 and "mot de passe" in page.text.lower()
    form = _form(page.text, "")                     # the form posts to the page itself
    response = person.client.post(location, data={**form["fields"], "password": PASSWORD})
    assert response.status_code == 303


# ------------------------------------------------------------------ the Hub (gap built)

def test_hub_form_keeps_values_shows_errors_and_only_the_issuer_registers(app, browser):
    from portal.models import Invitation, JournalEntry, Tenant
    from portal.domain.permissions import TenantKind
    browser.login("aptic.admin")

    def hubs():
        with app.app_context():
            return db.session.execute(sa.select(sa.func.count()).select_from(Tenant).where(
                Tenant.kind == TenantKind.HUB)).scalar()
    before = hubs()
    data = {"name": "Hub du Sud-Est", "address_line": "1 rue de la Paix", "postal_code": "750",
            "city": "Créteil", "agent_email": "agent@hub-sud-est.example"}
    response = browser.post("/mandataire/aptic/hubs", data)
    assert response.status_code == 422
    page = response.text
    assert 'id="postal_code-error"' in page and "code postal comporte 5 chiffres" in page
    for value in ("Hub du Sud-Est", "1 rue de la Paix", "750", "Créteil",
                  "agent@hub-sud-est.example"):
        assert f'value="{value}"' in page, value
    response = browser.post("/mandataire/aptic/hubs", {**data, "postal_code": "94000",
                                                       "agent_email": "pas-un-courriel"})
    assert response.status_code == 422 and 'id="agent_email-error"' in response.text
    # The demo's Hub already exists: a second one of the same name is refused by its field.
    response = browser.post("/mandataire/aptic/hubs", {**data, "name": "hub francil'in",
                                                       "postal_code": "94000"})
    assert response.status_code == 409 and 'id="name-error"' in response.text
    assert hubs() == before
    # Accepted: the Hub exists, its agent is invited as its administrator, the journal says so.
    response = browser.post("/mandataire/aptic/hubs", {**data, "postal_code": "94000"})
    assert response.status_code == 303
    assert hubs() == before + 1 and "Hub du Sud-Est" in browser.get("/mandataire/aptic/hubs").text
    with app.app_context():
        hub = db.session.execute(sa.select(Tenant).where(Tenant.name == "Hub du Sud-Est")
                                 ).scalar_one()
        invitation = db.session.execute(sa.select(Invitation).where(
            Invitation.tenant_id == hub.id)).scalar_one()
        assert (invitation.email, invitation.role.value) == ("agent@hub-sud-est.example",
                                                             "hub_admin")
        assert db.session.execute(sa.select(JournalEntry).where(
            JournalEntry.action == "tenant.created", JournalEntry.target_id == hub.id)
        ).scalar_one().after["type"] == "hub"
    # A commanditaire's administrator cannot reach the page.
    other = Browser(app).login("mgp.admin")
    assert other.get("/mandataire/aptic/hubs").status_code == 404
