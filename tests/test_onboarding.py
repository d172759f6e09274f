"""Day one, part b (issue 13): commanditaires, programmes, territory,
structures, « Devenir lieu qualifié » and the export of qualified places in
the national schema (« lieux de médiation numérique », ANCT)."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from conftest import Browser
from portal.domain import structures, territory
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.extensions import db
from portal.models import (Candidature, Invitation, JournalEntry, Membership,
                           OperateurProfile, Programme, ProgrammePerimeter, Qualification, Tenant,
                           User)

PASSWORD = "un mot de passe assez long"
LINK = re.compile(r"https?://[^/\s]+(/invitation/\S+)")
# Valid SIRETs (Luhn on SIREN and SIRET), distinct.
SIRETS = ["73282932000074", "35600000000048", "44306184100047", "55208131766522",
          "41816609600069"]


def _count(app, model, *criteria):
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(model)
                                  .where(*criteria)).scalar()


def _last_link(app, email: str, caplog=None) -> str:
    """The link of the last e-mail sent to ``email``: from the test outbox, or
    (production mode, no SMTP_HOST) from the log where the portal writes it."""
    if caplog is not None:
        bodies = [r.getMessage() for r in caplog.records
                  if r.name == "portal.mail" and f" to {email} " in r.getMessage()]
        return LINK.search(bodies[-1]).group(1)
    outbox = app.extensions["outbox"]
    message = next(m for m in reversed(outbox) if m["To"] == email)
    return LINK.search(message.get_content()).group(1)


def _browser(app) -> Browser:
    """A browser; in production mode it speaks HTTPS (Secure cookies, and the
    Referer that Flask-WTF checks on HTTPS), as behind the reverse proxy."""
    person = Browser(app)
    if not app.testing:
        person.client.environ_base.update({"wsgi.url_scheme": "https",
                                           "HTTP_REFERER": "https://localhost/"})
    return person


def _accept(app, email: str, name: str, caplog=None, link: str | None = None) -> Browser:
    """The invited person opens the link, sets a name and a password, and
    (administrators) enrols the second factor — through the pages."""
    person = _browser(app)
    link = link or _last_link(app, email, caplog)
    assert person.get(link).status_code == 200
    response = person.post(link, {"full_name": name, "password": PASSWORD,
                                  "confirm_password": PASSWORD})
    assert response.status_code == 303, response.text[:600]
    if "/connexion/" in response.location:
        person.pass_second_factor(email, response.location)
    return person


def _tenant(app, **criteria) -> Tenant:
    with app.app_context():
        tenant = db.session.execute(sa.select(Tenant).filter_by(**criteria)).scalar_one()
        db.session.expunge(tenant)
        return tenant


@pytest.fixture
def production_app(leg, tmp_path):
    """An empty, freshly migrated database served in production mode (secrets
    from the configuration, HTTPS cookies, no test outbox, no demo data)."""
    from conftest import make_app
    url = leg.new_database(False, tmp_path)
    app = make_app(url, PORTAL_ENV="production", SECRET_KEY="s" * 40,
                   PASS_MAC_KEYS="P1:cHJvZHVjdGlvbi10ZXN0LXBhc3MtbWFjLWtleS0x",
                   LEDGER_HMAC_KEY="cHJvZHVjdGlvbi10ZXN0LWxlZGdlci1obWFjLWtleQ==",
                   PRINT_DIR=str(tmp_path / "prints"),
                   # production refuses to start without a queue; tasks run inline here
                   REDIS_URL="redis://127.0.0.1:6379/12", JOBS_INLINE="sync")
    assert not app.testing and "outbox" not in app.extensions
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    leg.drop(url)


# ------------------------------------------------------------------ the whole journey

def test_from_an_empty_database_to_an_approved_place_through_the_pages(production_app, caplog):
    """Empty production-mode database → ``flask setup`` → #APTIC's administrator
    registers the Métropole and invites its administrator → programme →
    communes from the bundled list → référent invited and signed in →
    structures and their administrators → a place applies, is qualified and
    approved, its applicant invited. Only pages (and the setup command)."""
    import logging
    caplog.set_level(logging.INFO, logger="portal.mail")
    app = production_app
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Tenant)).scalar() == 0
    result = app.test_cli_runner().invoke(args=["setup", "--email", "admin@aptic.example"])
    assert result.exit_code == 0, result.output
    aptic_admin = _accept(app, "admin@aptic.example", "Amélie Perrin",
                          link=LINK.search(result.output).group(1))

    # #APTIC registers the Métropole and invites its first administrator.
    page = aptic_admin.get("/mandataire/aptic/commanditaires")
    assert page.status_code == 200 and "Enregistrer un commanditaire" in page.text
    response = aptic_admin.post("/mandataire/aptic/commanditaires", {
        "name": "Métropole du Grand Paris", "collectivite": "metropole", "siren": "200054781",
        "address_line": "15-19 avenue Pierre Mendès-France", "postal_code": "75013",
        "city": "Paris", "admin_email": "Mathilde.Garnier@metropolegrandparis.example"})
    assert response.status_code == 303, response.text[:800]
    assert "Métropole du Grand Paris" in aptic_admin.get("/mandataire/aptic/commanditaires").text
    mgp = _tenant(app, kind=TenantKind.METROPOLE)
    mgp_admin = _accept(app, "mathilde.garnier@metropolegrandparis.example", "Mathilde Garnier",
                        caplog)
    base = f"/metropole/{mgp.slug}"

    # Communes from the bundled reference list: preview, then confirm.
    page = mgp_admin.get(f"{base}/territoire").text
    assert "Montreuil (93048)" in page and "Bondy (93010)" in page
    preview = mgp_admin.post(f"{base}/territoire/apercu", {
        "source": "reference", "insee": ["93048", "93010"]})
    assert preview.status_code == 200 and "Seront créées (2)" in preview.text
    assert _count(app, Tenant, Tenant.kind == TenantKind.COMMUNE) == 0   # nothing written yet
    lines = re.findall(r'name="line" value="([^"]+)"', preview.text)
    assert sorted(lines) == ["93010|Bondy", "93048|Montreuil"]
    assert mgp_admin.post(f"{base}/territoire/confirmer", {"line": lines}).status_code == 303
    montreuil = _tenant(app, kind=TenantKind.COMMUNE, insee_code="93048")
    assert montreuil.parent_id == mgp.id and montreuil.name == "Montreuil"

    # A programme from the MGP 2021 convention's figures (AMI 1 template).
    form = mgp_admin.get(f"{base}/programmes/nouveau?modele=ami1").text
    assert 'value="155000"' in form and 'value="5000"' in form and 'value="2021-10-31"' in form
    data = _form_values(form, "create_programme")
    data.update(name="Pass Numérique MGP — AMI 3", prefix="MGP3", total_stock="40000",
                valid_until="2028-12-31", tolerance_until="2029-01-31",
                request_window_start="2026-01-01", request_window_end="2028-10-01",
                convention_ends_on="2028-10-31", experience_due_on="2028-09-01")
    response = mgp_admin.post(f"{base}/programmes/nouveau", data)
    assert response.status_code == 303, response.text[:1500]
    with app.app_context():
        programme = db.session.execute(sa.select(Programme)).scalar_one()
        assert (programme.prefix, programme.total_stock, programme.amorcage_size,
                programme.abondement_size, programme.abondement_threshold_pct) == (
            "MGP3", 40_000, 5_000, 2_500, 50)
        assert programme.issuer.slug == "aptic"
        perimeter = db.session.execute(sa.select(ProgrammePerimeter.tenant_id).where(
            ProgrammePerimeter.programme_id == programme.id)).scalars().all()
        assert len(perimeter) == 2
        actions = db.session.execute(sa.select(JournalEntry.action)).scalars().all()
        assert {"tenant.created", "programme.created", "invitation.sent",
                "invitation.accepted"} <= set(actions)
        programme_id = programme.id

    # The référent of Montreuil is invited and signs in.
    response = mgp_admin.post(f"{base}/territoire/communes/{montreuil.id}/referent",
                              {f"email-{montreuil.id}": "referent@montreuil.example"})
    assert response.status_code == 303, response.text[:800]
    referent = _accept(app, "referent@montreuil.example", "Rémi Référent", caplog)
    assert "Structures" in referent.get("/commune/montreuil/").text

    # The référent registers two structures and invites their administrators.
    for name, siret, roles, email in (
            ("CCAS de Montreuil", SIRETS[0], {"is_prescripteur": "1"}, "ccas@montreuil.example"),
            ("Médiathèque Robert-Desnos", SIRETS[2], {"is_operateur": "1"},
             "mediatheque@montreuil.example")):
        response = referent.post("/commune/montreuil/structures", {
            "name": name, "siret": siret, "address_line": "1 place Jean Jaurès",
            "postal_code": "93100", "city": "Montreuil", "admin_email": email, **roles})
        assert response.status_code == 303, response.text[:800]
    ccas_admin = _accept(app, "ccas@montreuil.example", "Claire Prescriptrice", caplog)
    ccas = _tenant(app, siret=SIRETS[0])
    with app.app_context():
        role = db.session.execute(sa.select(Membership.role).join(User).where(
            User.email == "ccas@montreuil.example")).scalar_one()
    assert ccas.is_prescripteur and not ccas.is_operateur and role is Role.PRESCRIPTEUR_AGENT
    assert ccas_admin.get(f"/structure/{ccas.slug}/").status_code == 200
    mediatheque = _tenant(app, siret=SIRETS[2])
    _accept(app, "mediatheque@montreuil.example", "Marc Médiateur", caplog)
    with app.app_context():
        assert db.session.execute(sa.select(OperateurProfile.qualification).where(
            OperateurProfile.structure_id == mediatheque.id)).scalar_one() is Qualification.EN_ATTENTE

    # A place applies on the public page…
    visitor = _browser(app)
    page = visitor.get("/devenir-lieu-qualifie")
    assert page.status_code == 200 and "Montreuil" in page.text
    response = visitor.post("/devenir-lieu-qualifie", {
        "name": "La Fabrique numérique", "siret": SIRETS[3], "address_line": "12 rue de Paris",
        "postal_code": "93100", "city": "Montreuil", "commune_id": str(montreuil.id),
        "services": ["Aide aux démarches administratives", "Utilisation sécurisée du numérique"],
        "telephone": "01 48 70 00 00", "site_web": "https://fabrique.example",
        "horaires": "Mo-Fr 09:00-12:00", "presentation_resume": "Ateliers et permanences.",
        "contact_name": "Fatou Diallo", "contact_email": "fatou@fabrique.example"})
    assert response.status_code == 303, response.text[:800]
    assert "Candidature reçue" in visitor.get(response.location).text
    place = _tenant(app, siret=SIRETS[3])
    assert place.parent_id == montreuil.id and place.is_operateur

    # … #APTIC qualifies it, then the commune approves it: the applicant is invited.
    assert "La Fabrique numérique" in aptic_admin.get("/mandataire/aptic/operateurs").text
    response = aptic_admin.post(f"/mandataire/aptic/operateurs/{place.id}/qualification",
                                {"qualification": "qualifie"})
    assert response.status_code == 303
    assert _count(app, Invitation, Invitation.email == "fatou@fabrique.example") == 0
    response = referent.post(f"/commune/montreuil/operateurs/{place.id}/approbation",
                             {"approve": "1"})
    assert response.status_code == 303
    applicant = _accept(app, "fatou@fabrique.example", "Fatou Diallo", caplog)
    with app.app_context():
        role = db.session.execute(sa.select(Membership.role).join(User).where(
            User.email == "fatou@fabrique.example")).scalar_one()
        assert role is Role.OPERATEUR_ADMIN
        assert db.session.execute(sa.select(Candidature.invited_at)).scalar_one() is not None
    assert applicant.get(f"/structure/{place.slug}/").status_code == 200

    # The qualified places of the programme, in the national schema.
    export = mgp_admin.get(f"{base}/programmes/{programme_id}/lieux.json")
    assert export.status_code == 200
    rows = json.loads(export.data)
    assert [r["nom"] for r in rows] == ["La Fabrique numérique"]   # the médiathèque waits
    assert rows[0]["pivot"] == SIRETS[3] and rows[0]["code_insee"] == "93048"
    assert rows[0]["telephone"] == "+33148700000"
    _assert_valid_against_schema(rows)


def _form_values(page: str, action_endpoint_hint: str) -> dict:
    """The values of the creation form as the browser would send them."""
    form = page[page.index('method="post"'):]
    data: dict = {}
    for match in re.finditer(r'<input id="[^"]*" name="([^"]+)" type="(number|date|text)" '
                             r'value="([^"]*)"', form):
        data[match.group(1)] = match.group(3)
    for name in ("target_publics", "perimeter"):
        data[name] = re.findall(rf'name="{name}" value="([^"]+)" checked', form)
    if 'name="partial_last_tranche" value="1" checked' in form:
        data["partial_last_tranche"] = "1"
    return data


def _assert_valid_against_schema(rows: list[dict]) -> None:
    from frictionless import Resource, Schema
    from portal.domain import lieux
    report = Resource(data=[lieux.field_names()] + [[r.get(f) for f in lieux.field_names()]
                                                     for r in rows],
                      schema=Schema.from_descriptor(lieux.schema())).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


# ------------------------------------------------------------------ schema export

def _qualified_place(app, name="Lieu « test » de Bondy", siret=SIRETS[4]):
    with app.app_context():
        bondy = db.session.execute(sa.select(Tenant).where(Tenant.slug == "bondy")).scalar_one()
        candidature = structures.apply(db.session, {
            "name": name, "siret": siret, "address_line": "3 avenue Gallieni",
            "postal_code": "93140", "city": "Bondy", "commune_id": bondy.id,
            "services": structures.SERVICES[:3], "telephone": "0612345678",
            "presentation_resume": "Accueil, ateliers; démarches, \"aide\"",
            "contact_name": "X", "contact_email": "lieu@bondy.example"})
        from portal.domain import operateurs
        place = candidature.structure
        operateurs.set_qualification(db.session, place, Qualification.QUALIFIE, reason="",
                                     actor=Actor(None, None))
        operateurs.approve_by_commune(db.session, bondy, place, approve=True,
                                      actor=Actor(None, bondy.id))
        db.session.commit()
        return place.id


def test_qualified_places_export_is_valid_against_the_national_schema(app, browser):
    _qualified_place(app)
    browser.login("mgp.admin")
    as_json = browser.get("/metropole/mgp/programmes/2/lieux.json")
    assert as_json.status_code == 200 and as_json.mimetype == "application/json"
    rows = json.loads(as_json.data)
    names = [r["nom"] for r in rows]
    # 15 communes × 2 opérateur structures of the demo, and the new place.
    assert len(rows) == 31 and "Lieu « test » de Bondy" in names
    _assert_valid_against_schema(rows)
    as_csv = browser.get("/metropole/mgp/programmes/2/lieux.csv")
    assert as_csv.status_code == 200 and "attachment" in as_csv.headers["Content-Disposition"]
    from frictionless import Resource, Schema
    from portal.domain import lieux
    report = Resource(as_csv.data, format="csv",
                      schema=Schema.from_descriptor(lieux.schema())).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    header = as_csv.data.decode("utf-8").splitlines()[0]
    assert header.split(",") == lieux.field_names()
    # A place suspended by #APTIC leaves the export.
    with app.app_context():
        from portal.domain import operateurs
        place = db.session.execute(sa.select(Tenant).where(Tenant.siret == SIRETS[4])).scalar_one()
        operateurs.set_qualification(db.session, place, Qualification.SUSPENDU, reason="contrôle",
                                     actor=Actor(None, None))
        db.session.commit()
    assert len(json.loads(browser.get("/metropole/mgp/programmes/2/lieux.json").data)) == 30
    aptic = Browser(app).login("aptic.admin")
    assert aptic.get("/mandataire/aptic/programmes/2/lieux.csv").status_code == 200


def test_a_broken_export_is_caught_by_the_schema_check():
    """The validation used above does fail on rows outside the schema."""
    with pytest.raises(AssertionError):
        _assert_valid_against_schema([{"id": "x", "pivot": "12", "nom": "n", "commune": "c",
                                       "code_postal": "931", "adresse": "a",
                                       "date_maj": "2026-01-01", "services": "Autre chose"}])


# ------------------------------------------------------------------ territory by CSV

def _upload(browser, content: bytes, name="communes.csv"):
    import io
    return browser.client.post("/metropole/mgp/territoire/apercu", data={
        "source": "csv", "csrf_token": browser.csrf_token(),
        "file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def _rows(page: str, heading: str) -> list[str]:
    section = page[page.index(heading):]
    section = section[:section.index("</table>")]
    return [re.sub(r"<[^>]+>", " ", row).split() for row in re.findall(r"<tr[^>]*>(.*?)</tr>",
                                                                      section, re.S)[1:]]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_preview_reports_every_line_and_writes_nothing(app, browser, bom):
    browser.login("mgp.admin")
    before = _count(app, Tenant)
    content = bom + ("code_insee;nom\n"
                     "93027;La Courneuve\n"
                     "93048;Montreuil\n"             # already in MGP's territory
                     "9304A;Nulle part\n"            # bad INSEE code
                     "93027;La Courneuve bis\n"      # duplicate in the file
                     "93045\tLes Lilas\n"            # wrong separator
                     "94002;\n"                      # no name
                     "1001;L'Abergement-Clémenciat\n"  # leading zero lost by a spreadsheet
                     ).encode("utf-8")
    response = _upload(browser, content)
    assert response.status_code == 200, response.text[:800]
    page = response.text
    assert "Seront créées (2)" in page and "Existent déjà (1)" in page
    assert "Lignes refusées (4)" in page
    rejected = page[page.index("Lignes refusées"):]
    assert "code INSEE « 9304A » invalide" in rejected
    assert "doublon : code INSEE déjà présent (ligne 2)" in rejected
    assert "séparateur non reconnu" in rejected
    assert "nom de la commune manquant" in rejected
    assert re.search(r"<td>5</td><td>93027 La Courneuve bis</td>", rejected)
    assert _count(app, Tenant) == before                       # nothing written
    lines = re.findall(r'name="line" value="([^"]+)"', page)
    assert sorted(lines) == ["01001|L'Abergement-Clémenciat", "93027|La Courneuve"]
    assert browser.post("/metropole/mgp/territoire/confirmer", {"line": lines}).status_code == 303
    assert _count(app, Tenant) == before + 2
    with app.app_context():
        courneuve = db.session.execute(sa.select(Tenant).where(
            Tenant.insee_code == "93027")).scalar_one()
        assert courneuve.parent.slug == "mgp" and courneuve.kind is TenantKind.COMMUNE
        assert db.session.execute(sa.select(JournalEntry).where(
            JournalEntry.action == "tenant.created", JournalEntry.target_id == courneuve.id)
        ).scalar_one().after["insee"] == "93027"
    # Confirming the same preview again creates nothing more.
    assert browser.post("/metropole/mgp/territoire/confirmer", {"line": lines}).status_code == 303
    assert _count(app, Tenant) == before + 2


def test_csv_with_commas_and_windows_encoding_is_read(app, browser):
    browser.login("mgp.admin")
    response = _upload(browser, "93045,Les Lilas\r\n93061,Le Pré-Saint-Gervais\r\n".encode("cp1252"))
    assert response.status_code == 200
    assert "Seront créées (2)" in response.text and "Le Pré-Saint-Gervais" in response.text


@pytest.mark.parametrize("content,message", [
    (b"", "Le fichier est vide."),
    (b"\n\n", "Le fichier est vide."),
    (b"93045;Les Lilas\n" * 200, "Fichier trop volumineux"),     # limit lowered below
    (b"93045;Les\x00Lilas\n", "caractère nul"),
])
def test_unreadable_csv_files_re_render_the_territory_page(app, browser, content, message,
                                                          monkeypatch):
    # A 3 KB limit rather than 512 KB: the test client spools bigger bodies
    # to a temporary file it never closes (a ResourceWarning, an error here).
    monkeypatch.setattr(territory, "MAX_CSV_BYTES", 3000)
    browser.login("mgp.admin")
    before = _count(app, Tenant)
    response = _upload(browser, content)
    assert response.status_code == 422
    assert message in response.text
    assert 'id="file-error"' in response.text and "<h1>Territoire</h1>" in response.text
    assert _count(app, Tenant) == before


def test_no_file_and_no_choice_are_errors_next_to_their_field(browser):
    browser.login("mgp.admin")
    response = browser.post("/metropole/mgp/territoire/apercu", {"source": "csv"})
    assert response.status_code == 422 and 'id="file-error"' in response.text
    response = browser.post("/metropole/mgp/territoire/apercu", {"source": "reference"})
    assert response.status_code == 422 and 'id="insee-error"' in response.text


def test_parse_csv_unit():
    lines = territory.parse_csv("\ufeff2A004;Ajaccio\n97411;Saint-Denis\n75056;Paris;x\n"
                                .encode("utf-8"))
    assert [(ln.insee, ln.reason) for ln in lines] == [
        ("2A004", ""), ("97411", ""), ("75056", "trop de colonnes : code INSEE ; nom attendus")]
    assert territory.departement_of("97411") == "974" and territory.departement_of("2A004") == "2A"


def test_reference_list_is_the_metropole_du_grand_paris():
    data = territory.reference()
    codes = {c["insee"] for c in data["communes"]}
    assert data["epci"]["siren"] == "200054781" and "decoupage-administratif" in data["source"]
    assert {"75056", "93048", "92050", "94028"} <= codes and len(codes) == len(data["communes"])
    assert 120 <= len(codes) <= 140
    assert {c["departement"] for c in data["communes"]} <= {"75", "91", "92", "93", "94", "95"}


def test_a_commune_of_another_commanditaire_is_refused(app, browser):
    with app.app_context():
        other = Tenant(kind=TenantKind.METROPOLE, slug="dep93", name="Département 93")
        db.session.add(other)
        db.session.commit()
        result = territory.preview(db.session, other, territory.reference_lines(["93048"]))
        assert [ln.reason for ln in result.rejected] == [
            "commune déjà rattachée à un autre commanditaire"]


# ------------------------------------------------------------------ forms re-render in place

def test_commanditaire_form_keeps_values_and_shows_the_error_by_its_field(app, browser):
    browser.login("aptic.admin")
    before = _count(app, Tenant)
    data = {"name": "Département de la Seine-Saint-Denis", "collectivite": "departement",
            "siren": "123456789", "address_line": "Hôtel du Département", "postal_code": "93006",
            "city": "Bobigny", "admin_email": "dsi@seinesaintdenis.example"}
    response = browser.post("/mandataire/aptic/commanditaires", data)
    assert response.status_code == 422
    page = response.text
    assert 'id="siren-error"' in page and "SIREN n'est pas valide" in page
    assert 'aria-invalid="true" aria-describedby="siren-error"' in page
    for value in ("Département de la Seine-Saint-Denis", "Hôtel du Département", "93006",
                  "dsi@seinesaintdenis.example", "123456789"):
        assert f'value="{value}"' in page, value
    assert '<option value="departement" selected>' in page
    response = browser.post("/mandataire/aptic/commanditaires", {**data, "siren": "",
                                                                 "admin_email": "pas-un-courriel"})
    assert response.status_code == 422 and 'id="admin_email-error"' in response.text
    assert _count(app, Tenant) == before
    response = browser.post("/mandataire/aptic/commanditaires", {**data, "siren": "229300017"})
    assert response.status_code == 303
    with app.app_context():
        tenant = db.session.execute(sa.select(Tenant).where(
            Tenant.name == "Département de la Seine-Saint-Denis")).scalar_one()
        assert tenant.kind is TenantKind.METROPOLE
        invitation = db.session.execute(sa.select(Invitation).where(
            Invitation.tenant_id == tenant.id)).scalar_one()
        assert invitation.role is Role.MGP_ADMIN
    # Same name twice: refused next to the name.
    again = browser.post("/mandataire/aptic/commanditaires", {**data, "siren": ""})
    assert again.status_code == 409 and 'id="name-error"' in again.text


def test_structure_form_keeps_values(app, browser):
    browser.login("referent.bondy")
    before = _count(app, Tenant)
    data = {"name": "Régie de quartier", "siret": "12345678901234", "address_line": "5 rue Roger",
            "postal_code": "93140", "city": "Bondy", "is_operateur": "1",
            "admin_email": "regie@bondy.example"}
    response = browser.post("/commune/bondy/structures", data)
    assert response.status_code == 422
    assert 'id="siret-error"' in response.text and "clé de contrôle" in response.text
    assert 'value="Régie de quartier"' in response.text and 'name="is_operateur" value="1" checked' in response.text
    response = browser.post("/commune/bondy/structures", {**data, "siret": SIRETS[1],
                                                          "is_operateur": ""})
    assert response.status_code == 422 and 'id="roles-error"' in response.text
    assert _count(app, Tenant) == before
    assert browser.post("/commune/bondy/structures", {**data, "siret": SIRETS[1]}
                        ).status_code == 303
    response = browser.post("/commune/bondy/structures", {**data, "siret": SIRETS[1],
                                                          "admin_email": "autre@bondy.example"})
    assert response.status_code == 409 and "déjà enregistré" in response.text
    assert 'id="siret-error"' in response.text
    assert _count(app, Tenant) == before + 1
    # An agent of the commune sees the list but cannot register.
    agent = Browser(app).login("agent.bondy")
    assert agent.get("/commune/bondy/structures").status_code == 200
    assert agent.post("/commune/bondy/structures", data).status_code == 403


def test_aptic_registers_a_structure_in_any_commune_it_serves(app, browser):
    browser.login("aptic.admin")
    bondy = _tenant(app, slug="bondy")
    response = browser.post("/mandataire/aptic/structures", {
        "commune_id": str(bondy.id), "name": "Espace numérique", "siret": SIRETS[1],
        "address_line": "1 rue A", "postal_code": "93140", "city": "Bondy",
        "is_prescripteur": "1", "is_operateur": "1", "admin_email": "en@bondy.example"})
    assert response.status_code == 303
    place = _tenant(app, siret=SIRETS[1])
    assert place.parent_id == bondy.id and place.is_prescripteur and place.is_operateur
    response = browser.post("/mandataire/aptic/structures", {"commune_id": "999999",
                                                             "name": "X"})
    assert response.status_code == 422 and 'id="commune_id-error"' in response.text


def test_candidature_form_keeps_values_and_is_limited_per_ip(app):
    visitor = Browser(app)
    bondy = _tenant(app, slug="bondy")
    data = {"name": "Cyber-base", "siret": SIRETS[1], "address_line": "2 rue B",
            "postal_code": "93140", "city": "Bondy", "commune_id": str(bondy.id),
            "services": ["Loisirs et créations numériques"], "telephone": "12",
            "contact_name": "Ali", "contact_email": "ali@cyber.example"}
    response = visitor.post("/devenir-lieu-qualifie", data)
    assert response.status_code == 422
    assert 'id="telephone-error"' in response.text and 'value="Cyber-base"' in response.text
    assert 'value="Loisirs et créations numériques" checked' in response.text
    assert f'<option value="{bondy.id}" selected>' in response.text
    response = visitor.post("/devenir-lieu-qualifie", {**data, "telephone": "", "services": []})
    assert response.status_code == 422 and 'id="services-error"' in response.text
    assert _count(app, Candidature) == 0
    app.extensions["throttle"].limits["candidature"] = (1, 3600)
    assert visitor.post("/devenir-lieu-qualifie", {**data, "telephone": ""}).status_code == 303
    again = visitor.post("/devenir-lieu-qualifie", {**data, "telephone": "",
                                                    "siret": SIRETS[3]})
    assert again.status_code == 429 and 'value="Cyber-base"' in again.text
    assert _count(app, Candidature) == 1


def test_programme_form_keeps_values_and_templates_of_earlier_programmes(app, browser):
    browser.login("mgp.admin")
    page = browser.get("/metropole/mgp/programmes/nouveau?modele=2").text
    assert 'value="230000"' in page                 # AMI 2's stock, from the template
    data = _form_values(page, "create_programme")
    data.update(name="AMI 3", prefix="M")           # prefix too short
    before = _count(app, Programme)
    response = browser.post("/metropole/mgp/programmes/nouveau", data)
    assert response.status_code == 422
    assert 'id="prefix-error"' in response.text and 'value="AMI 3"' in response.text
    assert 'value="230000"' in response.text
    data.update(prefix="MGP3", tolerance_until="2000-01-01")
    response = browser.post("/metropole/mgp/programmes/nouveau", data)
    assert response.status_code == 422 and 'id="tolerance_until-error"' in response.text
    data.update(tolerance_until=data["valid_until"], perimeter=["999999"])
    response = browser.post("/metropole/mgp/programmes/nouveau", data)
    assert response.status_code == 422 and 'id="perimeter-error"' in response.text
    assert _count(app, Programme) == before
    data["perimeter"] = []
    assert browser.post("/metropole/mgp/programmes/nouveau", data).status_code == 303
    assert _count(app, Programme) == before + 1
    # Agents cannot create a programme.
    agent = Browser(app).login("mgp.agent")
    assert agent.get("/metropole/mgp/programmes/nouveau").status_code == 403


def test_programme_change_is_journaled_before_and_after(app, browser):
    browser.login("mgp.admin")
    page = browser.get("/metropole/mgp/programmes/2").text
    data = _form_values(page, "update_programme")
    data["name"] = re.search(r'id="name" name="name" value="([^"]+)"', page).group(1)
    data["amorcage_size"] = "6000"
    response = browser.post("/metropole/mgp/programmes/2/modifier", data)
    assert response.status_code == 303, response.text[:600]
    with app.app_context():
        entry = db.session.execute(sa.select(JournalEntry).where(
            JournalEntry.action == "programme.changed")).scalar_one()
        assert entry.before == {"amorcage_size": 5000} and entry.after == {"amorcage_size": 6000}


def test_referent_invitation_errors_stay_on_the_territory_page(app, browser):
    browser.login("mgp.admin")
    bondy = _tenant(app, slug="bondy")
    response = browser.post(f"/metropole/mgp/territoire/communes/{bondy.id}/referent",
                            {f"email-{bondy.id}": "pas un courriel"})
    assert response.status_code == 422
    assert f'id="email-{bondy.id}-error"' in response.text
    assert 'value="pas un courriel"' in response.text
    assert browser.post(f"/metropole/mgp/territoire/communes/{bondy.id}/referent",
                        {f"email-{bondy.id}": "nouveau.referent@bondy.example"}
                        ).status_code == 303
    assert "nouveau.referent@bondy.example" in app.extensions["outbox"][-1]["To"]
    # A commune that is not MGP's: 404.
    with app.app_context():
        other = Tenant(kind=TenantKind.COMMUNE, slug="ailleurs", name="Ailleurs")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    assert browser.post(f"/metropole/mgp/territoire/communes/{other_id}/referent",
                        {f"email-{other_id}": "x@y.example"}).status_code == 404


# ------------------------------------------------------------------ ended programmes

def test_an_ended_programme_offers_no_order_shipment_or_document(app, browser_factory):
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/emission").text
    assert "plus de nouvelle commande" in page        # AMI 1 ended on 31/01/2022
    response = aptic.post("/mandataire/aptic/emission/commandes",
                          {"programme_id": "1", "carnet_count": "1"})
    assert response.status_code == 409 and "est terminé" in response.text
    assert aptic.post("/mandataire/aptic/emission/commandes",
                      {"programme_id": "2", "carnet_count": "1"}).status_code == 303
    referent = browser_factory().login("referent.bondy")
    home = referent.get("/commune/bondy/").text
    assert "/commune/bondy/programmes/1/document-explicatif.pdf" not in home
    assert "/commune/bondy/programmes/2/document-explicatif.pdf" in home
    assert referent.get("/commune/bondy/programmes/1/document-explicatif.pdf").status_code == 409
    with app.app_context():
        from portal.domain import allocation
        from portal.models import Convention
        ami1 = db.session.get(Programme, 1)
        bondy = db.session.execute(sa.select(Tenant).where(Tenant.slug == "bondy")).scalar_one()
        convention = allocation.create_convention(db.session, ami1, bondy, reference="X")
        from portal.models import Tranche, TrancheKind, TrancheStatus
        tranche = Tranche(convention_id=convention.id, kind=TrancheKind.AMORCAGE, quantity=10,
                          status=TrancheStatus.CONFIRMEE)
        db.session.add(tranche)
        db.session.commit()
        tranche_id = tranche.id
        assert isinstance(convention, Convention)
    response = aptic.post(f"/mandataire/aptic/expeditions/{tranche_id}", {"ranges": "1"})
    assert response.status_code == 409 and "expédition impossible" in response.text


def test_a_place_keeps_its_public_fields_and_they_reach_the_export(app, browser):
    browser.login("admin.bondy-mediatheque")
    assert browser.get("/structure/bondy-mediatheque/lieu").status_code == 200
    data = {"services": ["Aide aux démarches administratives"], "typologie": "BIB",
            "telephone": "01 48 50 00 00", "courriels": "mediatheque@bondy.example",
            "site_web": "mediatheque.bondy.example", "horaires": "Tu-Sa 10:00-18:00",
            "presentation_resume": "Espace numérique de la médiathèque."}
    response = browser.post("/structure/bondy-mediatheque/lieu", data)
    assert response.status_code == 422 and 'id="site_web-error"' in response.text
    assert 'value="Tu-Sa 10:00-18:00"' in response.text and 'value="BIB" selected' in response.text
    data["site_web"] = "https://mediatheque.bondy.example"
    assert browser.post("/structure/bondy-mediatheque/lieu", data).status_code == 303
    rows = json.loads(Browser(app).login("mgp.admin").get("/metropole/mgp/programmes/2/lieux.json").data)
    row = next(r for r in rows if r["nom"] == "Médiathèque de Bondy")
    assert row["services"] == "Aide aux démarches administratives" and row["typologie"] == "BIB"
    assert row["telephone"] == "+33148500000" and row["horaires"] == "Tu-Sa 10:00-18:00"
    _assert_valid_against_schema(rows)
    with app.app_context():
        entry = db.session.execute(sa.select(JournalEntry).where(
            JournalEntry.action == "tenant.changed", JournalEntry.target == "lieu")).scalar_one()
        assert entry.after["typologie"] == "BIB"
    # A prescripteur agent of another structure cannot (404), an opérateur agent may not (403).
    assert Browser(app).login("operateur.bondy-mediatheque").post(
        "/structure/bondy-mediatheque/lieu", data).status_code == 403
