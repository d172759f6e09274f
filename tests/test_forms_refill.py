"""Forms keep what people typed (issue 15): a refused form comes back filled, its message at
its field, from one mechanism (portal/web/refill.py) — checked here with the test client; the
browser tests (tests/browser/test_forms.py) check the same in chromium at 360 and 1280 px."""
from __future__ import annotations

import re

import sqlalchemy as sa
from lxml import html as lxml_html

from portal.models import Convention, Distribution

HOST = "http://localhost"


def _convention_id(app, slug):
    from portal.extensions import db
    with app.app_context():
        return db.session.execute(sa.select(Convention.id).where(
            Convention.commune.has(slug=slug), Convention.programme_id == 2)).scalar_one()


def _form(page: str, action: str):
    doc = lxml_html.document_fromstring(page)
    forms = [f for f in doc.iter("form") if (f.get("action") or "").endswith(action)]
    assert forms, f"no form posting to {action}"
    return forms[0]


def test_referent_form_comes_back_filled_with_the_message_at_the_email_field(app, browser):
    browser.login("referent.neuilly-plaisance")
    cid = _convention_id(app, "neuilly-plaisance")
    page_url = f"/commune/neuilly-plaisance/conventions/{cid}"
    response = browser.post(f"{page_url}/referent",
                            {"referent_name": "Sacha Nouveau", "referent_email": "pas-un-courriel",
                             "referent_phone": "01 02 03 04 05"},
                            headers={"Referer": HOST + page_url})
    assert response.status_code == 422
    form = _form(response.get_data(as_text=True), "/referent")
    name, email, phone = (form.get_element_by_id(i) for i in
                          ("referent_name", "referent_email", "referent_phone"))
    assert name.get("value") == "Sacha Nouveau" and phone.get("value") == "01 02 03 04 05"
    assert email.get("value") == "pas-un-courriel" and email.get("aria-invalid") == "true"
    note = form.get_element_by_id(email.get("aria-describedby"))
    assert "Adresse électronique du référent" in note.text_content()
    # The message sits right after its field, and the page is the convention page again.
    assert email.getnext() is note
    assert "Référent de projet" in response.text and "Retour à l'accueil" not in response.text
    # The page says why at the top and links to the field.
    assert re.search(r'role="alert">Le formulaire n.*?href="#referent_email"', response.text)


def test_hand_out_keeps_every_answer_when_the_carnet_number_is_refused(app, browser):
    browser.login("prescripteur.neuilly-plaisance-ccas")
    desk = "/structure/neuilly-plaisance-ccas/remise"
    page = browser.get(desk).get_data(as_text=True)
    form = _form(page, "/remise")
    programme_id = form.xpath(".//input[@name='programme_id']")[0].get("value")
    publics = form.xpath(".//input[@name='target_public']")
    needs = form.xpath(".//input[@name='needs']")
    selects = {s.get("name"): [o.get("value") for o in s.iter("option") if o.get("value")]
               for s in form.iter("select")}
    data = {"programme_id": programme_id, "request_token": "t-1", "carnet_number": "99999",
            "target_public": publics[-1].get("value"),
            "needs": [needs[0].get("value"), needs[-1].get("value")],
            **{name: options[-1] for name, options in selects.items()}}
    before = _distributions(app)
    response = browser.post(desk, data, headers={"Referer": HOST + desk})
    assert response.status_code in (404, 409, 422), response.status_code
    assert _distributions(app) == before
    form = _form(response.get_data(as_text=True), "/remise")
    carnet = form.xpath(".//input[@name='carnet_number']")[0]
    assert carnet.get("value") == "99999" and carnet.get("aria-invalid") == "true"
    assert "99999" in form.get_element_by_id(carnet.get("aria-describedby")).text_content()
    checked = {i.get("value") for i in form.xpath(".//input[@checked]")}
    assert publics[-1].get("value") in checked
    assert {needs[0].get("value"), needs[-1].get("value")} <= checked
    for name, options in selects.items():
        chosen = form.xpath(f".//select[@name='{name}']/option[@selected]")
        assert [o.get("value") for o in chosen] == [options[-1]]


def _distributions(app):
    from portal.extensions import db
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count(Distribution.id))).scalar_one()


def test_convention_page_shows_the_amorcage_state_instead_of_a_button_that_would_fail(
        app, browser):
    """Montreuil requested its amorçage (demo data): no « Demander l'amorçage » button, the
    reason it cannot be requested again, and the stepper at « demandé »."""
    browser.login("referent.montreuil")
    cid = _convention_id(app, "montreuil")
    page = browser.get(f"/commune/montreuil/conventions/{cid}").text
    assert "Demander l'amorçage" not in page
    assert "L'amorçage a déjà été demandé pour cette convention." in page
    stepper = lxml_html.document_fromstring(page).xpath("//ol[@class='stepper']/li")
    assert [li.text for li in stepper] == ["Demandé", "Confirmé", "Expédié", "Reçu", "Réparti"]
    assert [li.get("aria-current") for li in stepper] == ["step", None, None, None, None]
    # The refused request itself is still refused by the rule (the button was only hidden).
    response = browser.post(f"/commune/montreuil/conventions/{cid}/amorcage",
                            headers={"Referer": f"{HOST}/commune/montreuil/conventions/{cid}"})
    assert response.status_code == 409
    assert "déjà été demandé" in response.text and "Le formulaire n'a pas été" in response.text


def test_the_metropole_sees_the_same_amorcage_stepper(app, browser):
    """Neuilly-Plaisance received its amorçage and split part of it (demo): « reçu »;
    Montreuil's is « demandé »; Bondy's is not requested (no stepper)."""
    browser.login("mgp.agent")

    def stepper(slug):
        page = browser.get(f"/metropole/mgp/conventions/{_convention_id(app, slug)}").text
        return [(li.text, li.get("aria-current")) for li in
                lxml_html.document_fromstring(page).xpath("//ol[@class='stepper']/li")]
    assert [current for _text, current in stepper("neuilly-plaisance")] == [
        None, None, None, "step", None]
    assert stepper("montreuil")[0] == ("Demandé", "step")
    assert stepper("bondy") == []


def test_hub_opinions_page_puts_pending_communes_first_with_today_prefilled(app, browser):
    from portal.web.clock import today
    browser.login("hub.agent")
    page = browser.get("/hub/francilin/avis").text
    doc = lxml_html.document_fromstring(page)
    rows = doc.xpath("//tbody/tr[td]")
    pending = ["en attente" in row.text_content() for row in rows]
    assert any(pending) and pending == sorted(pending, reverse=True), pending
    with app.app_context():
        day = today().isoformat()
    dates = doc.xpath("//input[@name='given_on']")
    assert dates and {d.get("value") for d in dates} == {day}


def test_control_characters_in_a_refused_form_do_not_break_the_refill(app, browser):
    """A value lxml cannot hold (control character) is dropped from what is put back; the
    page still comes back with the message (found by tests/test_hostile_input.py)."""
    browser.login("referent.neuilly-plaisance")
    cid = _convention_id(app, "neuilly-plaisance")
    page_url = f"/commune/neuilly-plaisance/conventions/{cid}"
    response = browser.post(f"{page_url}/referent",
                            {"referent_name": "Sacha\x01\x1b Nouveau", "referent_email": "x\x02",
                             "referent_phone": "01 02 03 04 05"},
                            headers={"Referer": HOST + page_url})
    assert response.status_code == 422
    form = _form(response.get_data(as_text=True), "/referent")
    assert form.get_element_by_id("referent_name").get("value") == "Sacha Nouveau"
    assert form.get_element_by_id("referent_email").get("aria-invalid") == "true"


def test_without_a_referer_the_page_above_the_form_is_refilled(app, browser):
    """A client that sends no Referer: the page rebuilt is the nearest GET view above the
    form's URL (``…/conventions/<id>/referent`` → ``…/conventions/<id>``)."""
    browser.login("referent.neuilly-plaisance")
    cid = _convention_id(app, "neuilly-plaisance")
    response = browser.post(f"/commune/neuilly-plaisance/conventions/{cid}/referent",
                            {"referent_name": "Sacha Nouveau", "referent_email": "pas-un-courriel",
                             "referent_phone": "01 02 03 04 05"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Retour à l'accueil" not in page
    form = _form(page, "/referent")
    email = form.get_element_by_id("referent_email")
    assert email.get("aria-invalid") == "true" and email.get("value") == "pas-un-courriel"
    assert email.get("aria-describedby") == "referent_email-error"
    assert form.get_element_by_id("referent_name").get("value") == "Sacha Nouveau"


def test_a_rule_about_two_checkboxes_is_shown_after_their_legend(app, browser):
    """« Prescripteur ou opérateur » names no single control: the ``<fieldset>`` that declares
    ``data-field="roles"`` carries it, the message right after its legend."""
    browser.login("referent.bondy")
    url = "/commune/bondy/structures"
    response = browser.post(url, {"name": "Régie de quartier", "siret": "35600000000048",
                                  "address_line": "5 rue Roger", "postal_code": "93140",
                                  "city": "Bondy", "admin_email": "regie@bondy.example"},
                            headers={"Referer": HOST + url})
    assert response.status_code == 422
    form = _form(response.get_data(as_text=True), "/structures")
    group = form.xpath(".//fieldset[@data-field='roles']")[0]
    note = group.xpath("legend")[0].getnext()
    assert note.get("id") == "roles-error" and "class" in note.attrib
    for box in group.xpath(".//input[@type='checkbox']"):
        assert box.get("aria-invalid") == "true" and box.get("aria-describedby") == "roles-error"
    assert form.xpath(".//input[@name='name']")[0].get("value") == "Régie de quartier"
