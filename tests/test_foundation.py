"""The foundation: configuration, sign-in, tenant gate, errors, headers."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.config import ConfigError, load_config
from portal.models import AuthSession, User


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in ("SECRET_KEY", "PASS_MAC_KEYS", "LEDGER_HMAC_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config()
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    with pytest.raises(ConfigError, match="PASS_MAC_KEYS"):
        load_config()


def test_production_reads_secrets_and_database_url(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s3cr3t")
    monkeypatch.setenv("PASS_MAC_KEYS", "K1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==")
    monkeypatch.setenv("LEDGER_HMAC_KEY", "bGVkZ2VyLWtleS1mcm9tLWVudg==")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/pn")
    with pytest.raises(ConfigError, match="REDIS_URL is not set"):
        load_config()                      # production refuses to start without a job queue
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    config = load_config()
    assert config["SECRET_KEY"] == "s3cr3t"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/pn"
    assert config["SESSION_COOKIE_SECURE"] is True


def test_development_defaults_are_labelled(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_ENV", "development")
    assert "dev-only" in load_config()["SECRET_KEY"]


def test_sqlite_runs_in_wal_with_immediate_transactions(app):
    from portal.extensions import db
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite settings")
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_login_page_is_french(browser):
    response = browser.get("/connexion")
    html = response.text
    assert response.status_code == 200
    assert '<html lang="fr">' in html
    assert "Adresse électronique" in html and "Mot de passe" in html


def test_each_demo_user_lands_on_their_tenant(browser_factory):
    cases = {
        "mgp.admin": "/metropole/mgp/",
        "aptic.admin": "/mandataire/aptic/",
        "hub.agent": "/hub/francilin/",
        "referent.montreuil": "/commune/montreuil/",
        "operateur.bondy-mediatheque": "/structure/bondy-mediatheque/",
        "prescripteur.bondy-ccas": "/structure/bondy-ccas/",
    }
    for login, home in cases.items():
        b = browser_factory().login(login)
        response = b.get("/espaces")
        assert response.status_code == 302 and response.location.endswith(home), login
        assert b.get(home).status_code == 200


def test_user_with_two_tenants_chooses_and_switches(browser):
    browser.login("referent.neuilly-plaisance")
    html = browser.get("/espaces").text
    assert "/commune/neuilly-plaisance/" in html and "/structure/neuilly-plaisance-ccas/" in html
    assert browser.get("/structure/neuilly-plaisance-ccas/").status_code == 200
    page = browser.get("/commune/neuilly-plaisance/").text
    assert "Centre social et numérique de Neuilly-Plaisance" in page


def test_wrong_password_is_refused_in_french(browser):
    response = browser.post("/connexion", {"email": "mgp.admin@demo.pass-numerique.fr",
                                           "password": "mauvais"})
    assert response.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect" in response.text


def test_login_is_throttled_per_account_and_ip(browser):
    for _ in range(5):
        assert browser.post("/connexion", {"email": "mgp.agent@demo.pass-numerique.fr",
                                           "password": "x"}).status_code == 401
    response = browser.post("/connexion", {"email": "mgp.agent@demo.pass-numerique.fr",
                                           "password": "demo-pass-numerique"})
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text
    assert int(response.headers["Retry-After"]) > 0
    # Another account from the same address is not locked by these failures.
    browser.login("mgp.admin")


def test_commune_user_gets_404_on_another_commune(browser):
    browser.login("referent.montreuil")
    assert browser.get("/commune/montreuil/").status_code == 200
    for url in ("/commune/bondy/", "/commune/bondy/membres", "/commune/inexistante/",
                "/metropole/mgp/", "/structure/bondy-ccas/"):
        response = browser.get(url)
        assert response.status_code == 404, url
        assert "La page demandée n'existe pas" in response.text


def test_member_without_permission_gets_403(browser):
    browser.login("agent.montreuil")
    response = browser.get("/commune/montreuil/membres")
    assert response.status_code == 403
    assert "Accès refusé" in response.text


def test_anonymous_is_sent_to_login(browser):
    response = browser.get("/commune/montreuil/")
    assert response.status_code == 302
    assert "/connexion?next=" in response.location


def test_htmx_anonymous_gets_hx_redirect(browser):
    response = browser.get("/commune/montreuil/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/connexion")


def test_missing_csrf_token_is_a_french_400(browser):
    browser.login("referent.montreuil")
    response = browser.post("/deconnexion", csrf=False)
    assert response.status_code == 400
    assert "jeton de sécurité" in response.text
    assert browser.get("/commune/montreuil/").status_code == 200  # still signed in


def test_htmx_errors_are_fragments_retargeted_to_messages(browser):
    browser.login("referent.montreuil")
    response = browser.post("/deconnexion", csrf=False, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#messages"
    assert "<html" not in response.text


def test_logout_invalidates_a_copied_cookie(app, browser):
    browser.login("referent.montreuil")
    cookie = browser.client.get_cookie("session")
    assert browser.post("/deconnexion").status_code == 303
    thief = app.test_client()
    thief.set_cookie(cookie.key, cookie.value)
    assert thief.get("/commune/montreuil/").status_code == 302


def test_password_change_signs_out_every_browser(app, browser_factory):
    first = browser_factory().login("referent.montreuil")
    second = browser_factory().login("referent.montreuil")
    response = first.post("/mon-compte", {"current_password": "demo-pass-numerique",
                                          "new_password": "un-nouveau-secret-2026",
                                          "confirm_password": "un-nouveau-secret-2026"})
    assert response.status_code == 303
    assert second.get("/commune/montreuil/").status_code == 302
    from portal.extensions import db
    with app.app_context():
        user = db.session.execute(sa.select(User).where(
            User.email == "referent.montreuil@demo.pass-numerique.fr")).scalar_one()
        assert db.session.execute(sa.select(sa.func.count()).select_from(AuthSession)
                                  .where(AuthSession.user_id == user.id)).scalar() == 0
    browser_factory().login("referent.montreuil", "un-nouveau-secret-2026")


def test_password_change_rejects_short_password(browser):
    browser.login("referent.montreuil")
    response = browser.post("/mon-compte", {"current_password": "demo-pass-numerique",
                                            "new_password": "court", "confirm_password": "court"})
    assert response.status_code == 422
    assert "au moins 12 caractères" in response.text
    assert browser.get("/commune/montreuil/").status_code == 200


def test_forgotten_password_flow(app, browser, browser_factory):
    response = browser.post("/mot-de-passe-oublie", {"email": "hub.agent@demo.pass-numerique.fr"})
    assert response.status_code == 303
    outbox = app.extensions["outbox"]
    assert len(outbox) == 1 and "réinitialisation" in outbox[0]["Subject"]
    link = re.search(r"http://localhost(/reinitialiser/\S+)", outbox[0].get_content()).group(1)
    assert browser.get(link).status_code == 200
    response = browser.post(link, {"new_password": "mot-de-passe-neuf-42",
                                   "confirm_password": "mot-de-passe-neuf-42"})
    assert response.status_code == 303
    browser_factory().login("hub.agent", "mot-de-passe-neuf-42")
    # The link works once: the password it was made for has changed.
    response = browser.post(link, {"new_password": "encore-un-autre-42",
                                   "confirm_password": "encore-un-autre-42"})
    assert response.status_code == 422
    assert "invalide ou a expiré" in response.text


def test_forgotten_password_does_not_reveal_accounts(app, browser):
    response = browser.post("/mot-de-passe-oublie", {"email": "personne@example.org"})
    assert response.status_code == 303
    assert app.extensions["outbox"] == []


def test_tampered_reset_token_is_refused(browser):
    response = browser.get("/reinitialiser/abc.def.ghi")
    assert response.status_code == 422
    assert "invalide ou a expiré" in response.text


def test_open_redirect_after_login_is_ignored(browser):
    response = browser.post("/connexion", {"email": "mgp.agent@demo.pass-numerique.fr",
                                           "password": "demo-pass-numerique",
                                           "next": "//evil.example/"})
    assert response.status_code == 303
    assert response.location.endswith("/espaces")


def test_security_headers_and_vary(browser):
    response = browser.get("/connexion")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp.replace("wasm-unsafe-eval", "")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "HX-Request" in response.headers["Vary"]
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_inline_script_in_pages(browser):
    browser.login("mgp.admin")
    html = browser.get("/metropole/mgp/").text
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag
    assert "vendor/htmx-2.0.11.min.js" in html


def test_unknown_url_and_bad_method_are_french(browser):
    response = browser.get("/nimporte/quoi")
    assert response.status_code == 404 and "Page introuvable" in response.text
    response = browser.client.put("/connexion")
    assert response.status_code == 405 and "Méthode non autorisée" in response.text


def test_healthz_checks_the_database(browser):
    response = browser.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_unexpected_error_is_a_french_500_without_trace(app):
    from portal.web.gate import public

    @app.route("/boom-test")
    @public
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom-test")
    html = response.text
    assert response.status_code == 500
    assert "Erreur interne" in html and "secret internals" not in html and "Traceback" not in html
