"""Screenshots of each role's main page and of the phone scan flow (docs/screens/).

Run by ``scripts/screens.sh`` (README, "Screens"), which sets ``PORTAL_SCREENS_DIR``; the
normal test run skips it (it only takes pictures). Each picture is taken after the page
settled; the phone pictures are 360×740, the others 1280 px wide.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import MOBILE
from tests.browser.test_accessibility import DESKTOP, RoleWatch

OUT = os.environ.get("PORTAL_SCREENS_DIR")
pytestmark = pytest.mark.skipif(not OUT, reason="screenshots: run scripts/screens.sh")

# (file name, login, path, viewport)
PAGES = [
    ("metropole-accueil", "mgp.admin", "/metropole/mgp/", DESKTOP),
    ("aptic-accueil", "aptic.admin", "/mandataire/aptic/", DESKTOP),
    ("hub-avis", "hub.agent", "/hub/francilin/avis", DESKTOP),
    ("commune-accueil", "referent.neuilly-plaisance", "/commune/neuilly-plaisance/", DESKTOP),
    ("prescripteur-remise-telephone", "prescripteur.neuilly-plaisance-ccas",
     "/structure/neuilly-plaisance-ccas/remise", MOBILE),
    ("lieu-qualifie", "admin.bondy-mediatheque", "/structure/bondy-mediatheque/operateur",
     DESKTOP),
]


def _shot(watch: RoleWatch, name: str, full_page: bool = False) -> Path:
    watch.settle()
    path = Path(OUT) / f"{name}.png"
    watch.page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5000
    return path


@pytest.mark.parametrize("name,login,path,viewport", PAGES, ids=[p[0] for p in PAGES])
def test_main_page_of_each_role(app, chromium, live_server, name, login, path, viewport):
    watch = RoleWatch(chromium, live_server, viewport)
    try:
        watch.sign_in(app, login)
        response = watch.page.goto(live_server + path)
        assert response.status == 200
        _shot(watch, name)
    finally:
        watch.context.close()


def test_phone_scan_flow(app, chromium, live_server):
    from portal.extensions import db
    from portal.models import Pass
    from tests.scan_helpers import hand_out, qr
    with app.app_context():
        ids = hand_out(db.session)
        paths = [urlsplit(qr(db.session.get(Pass, i))).path for i in ids[:2]]
        db.session.remove()
    watch = RoleWatch(chromium, live_server, MOBILE)
    try:
        watch.sign_in(app, "operateur.bondy-centre-social")
        page = watch.page
        page.goto(live_server + paths[0])
        _shot(watch, "operateur-1-page-du-pass")
        page.get_by_role("button", name="Valider ce pass").click()
        page.locator("#pass-scan .scan-ok").wait_for()
        _shot(watch, "operateur-2-pass-valide")
        page.goto(live_server + "/structure/bondy-centre-social/scan")
        _shot(watch, "operateur-3-page-de-scan")
        page.fill("#scan-code", live_server + paths[1])
        page.get_by_role("button", name="Valider", exact=True).click()
        page.locator("#scan-result .scan-ok").wait_for()
        _shot(watch, "operateur-4-scan-valide")
    finally:
        watch.context.close()


def test_form_error_state(app, chromium, live_server):
    watch = RoleWatch(chromium, live_server, MOBILE)
    try:
        watch.sign_in(app, "prescripteur.neuilly-plaisance-ccas")
        page = watch.page
        page.goto(live_server + "/structure/neuilly-plaisance-ccas/remise")
        card = page.locator("section.card", has_text="AMI 2")
        card.get_by_label("Numéro du carnet remis").fill("999999")
        card.get_by_label("Seniors").check()
        card.get_by_label("Démarches administratives en ligne").check()
        card.get_by_label("Tranche d'âge").select_option(label="60 ans et plus")
        card.get_by_label("Équipement").select_option(label="Smartphone seulement")
        card.get_by_label("Orienté par").select_option(label="Un facilitateur")
        card.get_by_role("button", name="Remettre le carnet").click()
        page.wait_for_load_state()
        page.locator("[aria-invalid=true]").first.scroll_into_view_if_needed()
        _shot(watch, "prescripteur-remise-erreur-telephone")
    finally:
        watch.context.close()
