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
