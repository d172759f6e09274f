"""Security hardening: second factor of administrators, sessions, throttling
(lockout policy, Redis shared by several app instances)."""
from __future__ import annotations

import re
import time
import uuid

import pytest
import sqlalchemy as sa

from conftest import LEG, Browser
from portal.auth import totp
from portal.demo import DEMO_TOTP_SECRET
from portal.domain import accounts
from portal.extensions import db
from portal.models import AuthSession, RecoveryCode, TotpCredential
from portal.security import twofactor
from portal.security.throttle import MemoryBackend, RedisBackend, Throttle

ADMIN = "mgp.admin@demo.pass-numerique.fr"


# --- RFC 6238 ----------------------------------------------------------------

def test_totp_matches_rfc6238_vectors(monkeypatch):
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # ASCII "12345678901234567890"
    monkeypatch.setattr(totp, "DIGITS", 8)
    for now, expected in [(59, "94287082"), (1111111109, "07081804"),
                          (1111111111, "14050471"), (1234567890, "89005924"),
                          (2000000000, "69279037"), (20000000000, "65353130")]:
        assert totp.code_at(secret, now) == expected


def test_totp_window_and_replay():
    secret = totp.new_secret()
    now = 1_800_000_000
    step = totp.step_at(now)
    assert totp.verify(secret, totp.hotp(secret, step), now=now) == step
    assert totp.verify(secret, totp.hotp(secret, step - 1), now=now) == step - 1
    assert totp.verify(secret, totp.hotp(secret, step + 1), now=now) == step + 1
    assert totp.verify(secret, totp.hotp(secret, step - 2), now=now) is None
    assert totp.verify(secret, totp.hotp(secret, step + 2), now=now) is None
    # Already used (or an earlier step): refused.
    assert totp.verify(secret, totp.hotp(secret, step), last_step=step, now=now) is None
    assert totp.verify(secret, totp.hotp(secret, step - 1), last_step=step, now=now) is None
    assert totp.verify(secret, "12345", now=now) is None
    assert totp.verify(secret, "abcdef", now=now) is None


def test_provisioning_uri_and_qr():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", "a.b@exemple.fr")
    assert uri.startswith("otpauth://totp/Pass%20Num%C3%A9rique%20MGP:a.b@exemple.fr?")
    assert "secret=JBSWY3DPEHPK3PXP" in uri and "period=30" in uri and "digits=6" in uri
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg and "style=" not in svg


# --- Sign-in flow --------------------------------------------------------------

def _post_login(browser, email, password="demo-pass-numerique", **extra):
    return browser.post("/connexion", {"email": email, "password": password, **extra})


def test_admin_needs_a_code_and_reaches_nothing_before(app, browser):
    response = _post_login(browser, ADMIN)
    assert response.status_code == 303 and response.location.endswith("/connexion/verification")
    # Not signed in yet: every other page sends back to the login page.
    for url in ("/espaces", "/mon-compte", "/metropole/mgp/"):
        assert browser.get(url).status_code == 302
        assert "/connexion" in browser.get(url).location
    page = browser.get("/connexion/verification")
    assert page.status_code == 200 and "Code de vérification" in page.text
    wrong = browser.post("/connexion/verification", {"code": "000000"})
    assert wrong.status_code == 422 and "Code incorrect" in wrong.text
    good = browser.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert good.status_code == 303 and good.location.endswith("/espaces")
    assert browser.get("/metropole/mgp/").status_code == 200


def test_same_code_is_refused_twice(app, browser_factory):
    code = totp.code_at(DEMO_TOTP_SECRET)
    first = browser_factory()
    _post_login(first, ADMIN)
    assert first.post("/connexion/verification", {"code": code}).status_code == 303
    second = browser_factory()
    _post_login(second, ADMIN)
    replay = second.post("/connexion/verification", {"code": code})
    assert replay.status_code == 422
    assert second.get("/metropole/mgp/").status_code == 302


def test_non_admin_signs_in_with_password_only(browser):
    response = _post_login(browser, "mgp.agent@demo.pass-numerique.fr")
    assert response.status_code == 303 and response.location.endswith("/espaces")


def test_next_survives_the_second_factor_but_not_an_open_redirect(browser_factory):
    ok = browser_factory()
    _post_login(ok, ADMIN, next="/metropole/mgp/")
    response = ok.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert response.location.endswith("/metropole/mgp/")
    evil = browser_factory()
    _post_login(evil, "hub.admin@demo.pass-numerique.fr", next="//evil.example/")
    response = evil.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert response.location.endswith("/espaces")


def test_code_guessing_is_throttled(browser):
    _post_login(browser, ADMIN)
    for _ in range(5):
        assert browser.post("/connexion/verification", {"code": "000000"}).status_code == 422
    response = browser.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert response.status_code == 429 and "Trop de tentatives" in response.text
    assert int(response.headers["Retry-After"]) > 0


def test_verification_without_password_step_goes_back_to_login(browser):
    response = browser.get("/connexion/verification")
    assert response.status_code == 303 and response.location.endswith("/connexion")
    response = browser.post("/connexion/activation-double-authentification", {"code": "123456"})
    assert response.status_code == 303 and response.location.endswith("/connexion")


def test_pending_state_expires(app, browser, monkeypatch):
    _post_login(browser, ADMIN)
    later = time.time() + 11 * 60
    monkeypatch.setattr("portal.auth.twofactor.time.time", lambda: later)
    response = browser.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert response.status_code == 303 and response.location.endswith("/connexion")


def _new_admin(app, email="nouvel.admin@exemple.fr"):
    from portal.domain.permissions import Role
    from portal.models import Tenant
    with app.app_context():
        user = accounts.create_user(db.session, email, "Nouvel Admin", "mot-de-passe-admin")
        aptic = db.session.execute(sa.select(Tenant).where(Tenant.slug == "aptic")).scalar_one()
        accounts.add_membership(db.session, user, aptic, Role.APTIC_ADMIN)
        db.session.commit()
    return email


def test_unenrolled_admin_is_sent_to_enrolment_then_gets_recovery_codes(app, browser):
    email = _new_admin(app)
    response = _post_login(browser, email, "mot-de-passe-admin")
    assert response.location.endswith("/connexion/activation-double-authentification")
    assert browser.get("/mandataire/aptic/").status_code == 302
    page = browser.get("/connexion/activation-double-authentification")
    assert page.status_code == 200
    assert "<svg" in page.text and "<script" not in page.text.split("<main")[1]
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    assert len(secret) == 32
    # Reloading the page keeps the same secret (the app may already hold it).
    again = browser.get("/connexion/activation-double-authentification")
    assert secret.replace(" ", "") in again.text.replace(" ", "")
    wrong = browser.post("/connexion/activation-double-authentification", {"code": "000000"})
    assert wrong.status_code == 422 and "Code incorrect" in wrong.text
    done = browser.post("/connexion/activation-double-authentification",
                        {"code": totp.code_at(secret)})
    assert done.status_code == 200 and "Codes de secours" in done.text
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", done.text)
    assert len(codes) == 10
    assert browser.get("/mandataire/aptic/").status_code == 200
    with app.app_context():
        stored = db.session.execute(sa.select(RecoveryCode.code_hash)).scalars().all()
        assert len(stored) == 10 and not any(c.replace("-", "") in h
                                             for c in codes for h in stored)
    # A recovery code signs in once.
    other = Browser(app)
    _post_login(other, email, "mot-de-passe-admin")
    response = other.post("/connexion/verification", {"code": codes[0].upper()})
    assert response.status_code == 303
    assert other.get("/mandataire/aptic/").status_code == 200
    third = Browser(app)
    _post_login(third, email, "mot-de-passe-admin")
    assert third.post("/connexion/verification", {"code": codes[0]}).status_code == 422


def test_copied_cookie_is_refused_after_password_change(app, browser):
    browser.login("referent.montreuil")
    stolen = browser.client.get_cookie("session")
    thief = app.test_client()
    thief.set_cookie(stolen.key, stolen.value)
    assert thief.get("/commune/montreuil/").status_code == 200
    assert browser.post("/mon-compte", {"current_password": "demo-pass-numerique",
                                        "new_password": "un-nouveau-secret-2026",
                                        "confirm_password": "un-nouveau-secret-2026"}
                        ).status_code == 303
    response = thief.get("/commune/montreuil/")
    assert response.status_code == 302 and "/connexion" in response.location


def test_copied_cookie_is_refused_after_second_factor_reset(app, browser):
    browser.login("mgp.admin")
    stolen = browser.client.get_cookie("session")
    thief = app.test_client()
    thief.set_cookie(stolen.key, stolen.value)
    assert thief.get("/metropole/mgp/").status_code == 200
    result = app.test_cli_runner().invoke(args=["security", "reset-2fa", ADMIN])
    assert result.exit_code == 0, result.output
    assert "réinitialisée" in result.output
    response = thief.get("/metropole/mgp/")
    assert response.status_code == 302 and "/connexion" in response.location
    assert browser.get("/metropole/mgp/").status_code == 302
    with app.app_context():
        user = accounts.find_user(db.session, ADMIN)
        assert db.session.get(TotpCredential, user.id) is None
        assert db.session.execute(sa.select(sa.func.count()).select_from(AuthSession)
                                  .where(AuthSession.user_id == user.id)).scalar() == 0
    # Next sign-in goes through enrolment again.
    response = _post_login(Browser(app), ADMIN)
    assert response.location.endswith("/connexion/activation-double-authentification")


def test_demo_code_command_is_development_only(app):
    result = app.test_cli_runner().invoke(args=["security", "demo-code"])
    assert result.exit_code == 0 and re.fullmatch(r"\d{6}\n", result.output)


def test_required_only_for_admin_roles(app):
    with app.app_context():
        for local, expected in [("mgp.admin", True), ("aptic.admin", True), ("hub.admin", True),
                                ("mgp.agent", False), ("referent.bondy", False),
                                ("admin.bondy-mediatheque", False)]:
            user = accounts.find_user(db.session, f"{local}@demo.pass-numerique.fr")
            assert twofactor.required(db.session, user) is expected, local


# --- Lockout policy ---------------------------------------------------------------

AGENT = "mgp.agent@demo.pass-numerique.fr"


def _attempt(app, ip, password="mauvais", email=AGENT):
    browser = Browser(app)
    token = browser.csrf_token()
    return browser.client.post("/connexion", data={"email": email, "password": password,
                                                   "csrf_token": token},
                               environ_base={"REMOTE_ADDR": ip})


def test_failures_from_another_ip_do_not_lock_the_user_out(app):
    for _ in range(5):
        assert _attempt(app, "198.51.100.66").status_code == 401
    assert _attempt(app, "198.51.100.66", "demo-pass-numerique").status_code == 429
    # The legitimate user, elsewhere, is not affected.
    assert _attempt(app, "203.0.113.7", "demo-pass-numerique").status_code == 303


def test_distributed_attack_locks_the_account_only_briefly(app, monkeypatch):
    limit, window = app.config["LOGIN_THROTTLE"]["per_account"]
    assert (limit, window) == (100, 300)
    clock = [1000.0]
    import types
    fake_time = types.SimpleNamespace(time=lambda: clock[0])
    monkeypatch.setattr("limits.storage.memory.time", fake_time)
    monkeypatch.setattr("portal.security.throttle.time", fake_time)
    app.extensions["throttle"].backend = MemoryBackend()
    per_ip = app.config["LOGIN_THROTTLE"]["per_account_ip"][0]
    for n in range(limit):
        assert _attempt(app, f"198.51.100.{n // per_ip + 1}").status_code == 401
    locked = _attempt(app, "203.0.113.7", "demo-pass-numerique")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) <= window
    clock[0] += window
    assert _attempt(app, "203.0.113.7", "demo-pass-numerique").status_code == 303


# --- Redis: counters shared by every worker -----------------------------------------

# The SQLite and PostgreSQL legs run at the same time (scripts/test.sh): the
# login counters are keyed by IP, so each leg counts in its own Redis db.
REDIS_URL = f"redis://127.0.0.1:6379/{1 if LEG == 'postgresql' else 0}"


@pytest.fixture
def redis_url():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


def test_redis_backend_counts_and_expires(redis_url):
    import redis
    prefix = f"pn-test-{uuid.uuid4().hex}"
    one = Throttle(RedisBackend(redis_url), {"k": (3, 2)}, prefix=prefix)
    two = Throttle(RedisBackend(redis_url), {"k": (3, 2)}, prefix=prefix)
    try:
        one.check(k="x")
        two.check(k="x")
        one.check(k="x")            # three attempts counted, across two instances
        from portal.domain.errors import TooManyAttempts
        with pytest.raises(TooManyAttempts):
            one.check(k="x")
        two.check(k="y")
        one.reset(k="x")
        two.check(k="x")
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_two_app_instances_share_login_counters_in_redis(leg, tmp_path, redis_url):
    import redis
    from conftest import make_app
    url = leg.new_database(True, tmp_path)
    email = f"redis.{uuid.uuid4().hex[:12]}@exemple.fr"
    apps = [make_app(url, REDIS_URL=redis_url) for _ in range(2)]
    try:
        with apps[0].app_context():
            accounts.create_user(db.session, email, "Test Redis", "mot-de-passe-redis")
            db.session.commit()
        for n in range(5):   # failures spread over the two "workers"
            assert _attempt(apps[n % 2], "192.0.2.10", email=email).status_code == 401
        for app in apps:
            response = _attempt(app, "192.0.2.10", "mot-de-passe-redis", email=email)
            assert response.status_code == 429, "counter not shared between instances"
        assert _attempt(apps[1], "192.0.2.11", "mot-de-passe-redis", email=email
                        ).status_code == 303
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"pn:thr:*{email}*"):
            client.delete(key)
        for app in apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        leg.drop(url)


def test_admin_regenerates_recovery_codes_with_a_current_code(app, browser):
    browser.login("aptic.admin")
    page = browser.get("/mon-compte/double-authentification")
    assert page.status_code == 200 and "utilisables : <strong>0</strong>" in page.text
    assert browser.post("/mon-compte/double-authentification", {"code": "000000"}
                        ).status_code == 422
    with app.app_context():
        last = twofactor.credential(db.session, accounts.find_user(
            db.session, "aptic.admin@demo.pass-numerique.fr")).last_step
    step = max(totp.step_at(), last + 1)
    response = browser.post("/mon-compte/double-authentification",
                            {"code": totp.hotp(DEMO_TOTP_SECRET, step)})
    assert response.status_code == 200 and "Nouveaux codes de secours" in response.text
    assert len(re.findall(r"<code>[a-z2-9]{5}-[a-z2-9]{5}</code>", response.text)) == 10
    assert "utilisables : <strong>10</strong>" in browser.get(
        "/mon-compte/double-authentification").text


def test_non_admin_sees_that_2fa_is_for_admins(browser):
    browser.login("mgp.agent")
    page = browser.get("/mon-compte/double-authentification")
    assert page.status_code == 200 and "réservée aux administrateurs" in page.text
    assert "Double authentification et codes de secours" in browser.get("/mon-compte").text
