"""Smoke test in a real browser: sign in on a phone-sized screen, French
home page, no CSP violation, no console error; accessibility of the login
page checked with axe-core."""
from __future__ import annotations


def test_login_on_a_phone_lands_on_the_french_home_page(watched):
    watched.login("referent.montreuil")
    page = watched.page
    assert page.url.endswith("/commune/montreuil/")
    assert page.get_attribute("html", "lang") == "fr"
    assert "Montreuil" in page.inner_text("main")
    assert "Se déconnecter" in page.inner_text("header")
    # htmx loaded from static/ (no CDN) and the layout fits the screen.
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360 + 1
    assert watched.csp_violations() == []
    assert watched.errors() == []


def test_login_page_has_no_serious_accessibility_violation(watched):
    watched.goto("/connexion")
    violations = watched.run_axe()
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert watched.csp_violations() == []


def test_enrolment_qr_code_decodes_on_a_phone_screen(app, watched):
    """A new administrator's enrolment page: the QR code, as the screen shows
    it, decodes to the otpauth:// URI of the secret printed beside it."""
    import sqlalchemy as sa
    import zxingcpp
    from PIL import Image

    from portal.domain import accounts
    from portal.domain.permissions import Role
    from portal.extensions import db
    from portal.models import Tenant
    with app.app_context():
        user = accounts.create_user(db.session, "nouvel.admin@exemple.fr", "Nouvel Admin",
                                    "mot-de-passe-admin")
        hub = db.session.execute(sa.select(Tenant).where(Tenant.slug == "francilin")).scalar_one()
        accounts.add_membership(db.session, user, hub, Role.HUB_ADMIN)
        db.session.commit()
    page = watched.page
    watched.goto("/connexion")
    page.fill("#email", "nouvel.admin@exemple.fr")
    page.fill("#password", "mot-de-passe-admin")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/connexion/activation-double-authentification")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    shot = watched.page.locator(".qr-code svg").screenshot()
    import io
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))]
    assert len(decoded) == 1 and decoded[0].startswith("otpauth://totp/")
    assert f"secret={secret}" in decoded[0]
    assert watched.csp_violations() == []
