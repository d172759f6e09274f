"""Issue 14: defects found by trying the portal (security and money items).
Each test failed before its fix."""
from __future__ import annotations

import concurrent.futures
import csv
import io
import re
import uuid

import pytest

from conftest import Browser
from portal.auth import totp
from portal.auth.views import _safe_next
from portal.demo import DEMO_TOTP_SECRET
from portal.domain import operateurs, spreadsheet, tables
from portal.domain.errors import InvalidInput, TooManyAttempts
from portal.security.throttle import MemoryBackend, RedisBackend, Throttle

RISKY = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1",
         "\r=1"]


# --- item 10: spreadsheet formula injection -----------------------------------------

def test_csv_cells_that_spreadsheets_would_run_are_neutralised():
    text = spreadsheet.csv_text([RISKY + ["-10,00", "12", "Médiathèque"]])
    cells = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert cells[:len(RISKY)] == ["'" + v for v in RISKY]
    assert cells[len(RISKY):] == ["-10,00", "12", "Médiathèque"]   # numbers stay numbers


def test_xlsx_text_is_never_a_formula():
    from openpyxl import load_workbook
    table = tables.Table("t", "Services", [tables.Column("name", "Service")],
                         [{"name": v} for v in RISKY])
    sheet = load_workbook(io.BytesIO(tables.to_xlsx(table))).active
    values = [row[0].value for row in sheet.iter_rows(min_row=2)]
    kinds = [row[0].data_type for row in sheet.iter_rows(min_row=2)]
    # (XML stores a carriage return as a line feed)
    assert [v.replace("\r", "\n") for v in values] == [v.replace("\r", "\n") for v in RISKY]
    assert set(kinds) == {"s"}
    rows = list(csv.reader(io.StringIO(tables.to_csv(table).lstrip("\ufeff")), delimiter=";"))
    assert [r[0] for r in rows[1:]] == ["'" + v for v in RISKY]


def test_a_service_name_reaches_the_statement_export_as_text(db_session):
    from portal.domain import settlement
    from portal.models import Statement, StatementLine
    from scan_helpers import structure
    statement = Statement(structure_id=structure(db_session).id, period="2021-03")
    db_session.add(statement)
    db_session.flush()
    db_session.add(StatementLine(statement_id=statement.id, amount_cents=1000,
                                 label='=HYPERLINK("http://evil.example")'))
    db_session.flush()
    db_session.refresh(statement)
    assert "'=HYPERLINK(" in settlement.to_csv(statement)


# --- item 11: open redirect ----------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/\\evil.example/", "/\\/evil.example/", "\\\\evil.example", "//evil.example/",
    "/%5Cevil.example", "/%2F/evil.example", "/\t/evil.example", "/\n/evil.example",
    "https://evil.example/", "javascript:alert(1)", "evil.example", "/\x00/x", "/\x7f/x",
    "///evil.example", " /evil",
])
def test_next_refuses_the_known_bypasses(target):
    assert _safe_next(target) is None


def test_next_keeps_a_local_path():
    assert _safe_next("/metropole/mgp/?onglet=2") == "/metropole/mgp/?onglet=2"


def test_enrolment_does_not_link_to_a_backslash_host(browser_factory):
    evil = browser_factory()
    response = evil.client.post("/connexion", data={
        "email": "hub.admin@demo.pass-numerique.fr", "password": "demo-pass-numerique",
        "next": "/\\evil.example/", "csrf_token": evil.csrf_token()})
    assert response.status_code == 303
    response = evil.post("/connexion/verification", {"code": totp.code_at(DEMO_TOTP_SECRET)})
    assert "evil.example" not in (response.location or "")
    assert response.location.endswith("/espaces")


# --- item 13: throttling -------------------------------------------------------------

def _race(throttle, attempts: int) -> int:
    def one(_):
        try:
            throttle.check(k="same")
            return 1
        except TooManyAttempts:
            return 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, range(attempts)))


def test_memory_counters_are_atomic_and_expire():
    throttle = Throttle(MemoryBackend(), {"k": (5, 1)}, prefix=f"t{uuid.uuid4().hex}")
    assert _race(throttle, 40) == 5                 # never more than the limit
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check(k="same")
    assert 1 <= refused.value.retry_after <= 1
    import time
    time.sleep(1.1)
    throttle.check(k="same")                        # the window is over
    for _ in range(10):                             # successes give their slot back
        throttle.check(k="other")
        throttle.succeeded(k="other")
    assert throttle.count("k", "other") == 0


def test_redis_counters_are_atomic_across_workers():
    import redis
    url = "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable: {error}")
    prefix = f"pn-i14-{uuid.uuid4().hex}"
    shared = Throttle(RedisBackend(url), {"k": (7, 5)}, prefix=prefix)
    assert _race(shared, 60) == 7
    shared.reset(k="same")
    assert _race(shared, 3) == 3


def test_production_refuses_to_start_without_shared_counters(monkeypatch):
    from portal.config import ConfigError, load_config
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s3cr3t")
    monkeypatch.setenv("PASS_MAC_KEYS", "K1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==")
    monkeypatch.setenv("LEDGER_HMAC_KEY", "bGVkZ2VyLWtleS1mcm9tLWVudg==")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="throttling counters shared by every worker"):
        load_config()


# --- item 14: headers and limits -----------------------------------------------------

def test_downloads_name_files_with_werkzeug_and_one_charset(app):
    from portal.web.downloads import CSV, attachment
    with app.test_request_context():
        response = attachment("a;b\r\n", 'relevé "mars" ɐ.csv', CSV)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    disposition.encode("latin-1")                          # gunicorn can send it
    assert "filename*=UTF-8''relev%C3%A9%20%22mars%22%20%C9%90.csv" in disposition


def test_no_view_builds_content_disposition_by_hand():
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent / "portal"
    offenders = [str(p) for p in root.rglob("*.py")
                 if re.search(r"Content-Disposition\"?\s*[:=]|charset=utf-8\"", p.read_text())]
    assert offenders == []


def test_open_data_csv_has_one_charset(app):
    response = app.test_client().get("/donnees-ouvertes/consommation.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_a_too_large_body_gets_a_french_413(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    client = app.test_client()
    response = client.post("/connexion", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert "trop volumineux" in response.text
    api = client.post("/api/v1/scans", data=b"{" + b" " * (app.config["MAX_CONTENT_LENGTH"] + 1),
                      content_type="application/json", headers={"Authorization": "Bearer x"})
    assert api.status_code in (401, 413)


# --- item 15: IBAN / BIC -------------------------------------------------------------

@pytest.mark.parametrize("iban", ["XX57WEST12345698765432", "FR7630006000011234567890188",
                                  "FR76", "DE8937040044053201300", "GB82WEST1234569876543X"])
def test_invalid_iban_is_refused(iban):
    with pytest.raises(InvalidInput):
        operateurs.normalise_iban(iban)


@pytest.mark.parametrize("bic", ["ABCDZZ12", "ABCD1R12", "ABCDFR", "ABCDFRPPX"])
def test_invalid_bic_is_refused(bic):
    with pytest.raises(InvalidInput):
        operateurs.normalise_bic(bic)


def test_valid_iban_and_bic_are_kept_and_masked(db_session):
    assert operateurs.normalise_iban("fr76 3000 6000 0112 3456 7890 189") == \
        "FR7630006000011234567890189"
    assert operateurs.normalise_bic("bnpa fr pp xxx") == "BNPAFRPPXXX"
    from portal.models import BankDetails
    details = BankDetails(iban="FR7630006000011234567890189", bic="BNPAFRPPXXX")
    assert "0189" in details.masked_iban and "3456" not in details.masked_iban


# --- item 16 (part): data shown to people; item 18 (part): print-carnets names the commune ---

def test_demo_structures_can_be_saved_as_shipped_and_names_elide(db_session):
    import sqlalchemy as sa
    from portal.domain.permissions import TenantKind
    from portal.models import Tenant
    structures = db_session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.STRUCTURE)).scalars().all()
    assert structures and all(operateurs.normalise_siret(s.siret) == s.siret for s in structures
                              if s.slug.split("-")[-1] in ("ccas", "mediatheque", "social"))
    names = {t.name for t in db_session.execute(sa.select(Tenant)).scalars()}
    assert "CCAS d'Ivry-sur-Seine" in names and "CCAS de Bondy" in names
    assert not [n for n in names if re.search(r"\bde [AEIOUYÉ]", n)]
    argenteuil = db_session.execute(sa.select(Tenant).where(Tenant.slug == "argenteuil")
                                    ).scalar_one()
    assert argenteuil.address_line.startswith("Mairie d'Argenteuil")


def _pdf_text(path) -> str:
    import shutil
    import subprocess
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent (poppler-utils)")
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True).stdout.decode()
    return re.sub(r"\s+", " ", out.replace("\u00a0", " "))


def test_print_carnets_reads_carnet_once_and_names_the_commune(app, tmp_path):
    output = tmp_path / "carnets.pdf"
    result = app.test_cli_runner().invoke(args=[
        "print-carnets", "MGP2", "1", "1", "--output", str(output), "--commune", "Bondy"])
    assert result.exit_code == 0, result.output
    text = _pdf_text(output)
    assert "Carnet n° 0000001" in text and "Carnet Carnet" not in text
    assert text.count("Commune : Bondy") == 10


def test_redirect_bodies_are_french(app):
    client = app.test_client()
    for response in (client.get("/mandataire/aptic/"),
                     Browser(app).client.post("/connexion", data={})):
        if response.status_code not in (301, 302, 303, 307, 308):
            continue
        assert 'lang="fr"' in response.text and "Redirection" in response.text
        assert "Redirecting" not in response.text and "You should be redirected" not in response.text
    login = client.get("/mandataire/aptic/")
    assert login.status_code in (302, 303) and "Redirection" in login.text


def test_lieu_page_lists_live_tokens_and_only_the_latest_revoked(app):
    from portal.domain import api_tokens
    from portal.domain.ledger import Actor
    from portal.extensions import db
    from scan_helpers import structure
    with app.app_context():
        place = structure(db.session)
        live, _ = api_tokens.create(db.session, place, "Tablette accueil", Actor(None, None))
        for n in range(25):
            row, _ = api_tokens.create(db.session, place, f"Ancien {n:02d}", Actor(None, None))
            api_tokens.revoke(db.session, row)
        db.session.commit()
        listed = api_tokens.tokens_of(db.session, place.id)
        live_count = sum(1 for t in listed if t.revoked_at is None)
        assert listed[0].id == live.id and len(listed) == live_count + api_tokens.REVOKED_SHOWN
        assert [t.name for t in listed[live_count:]] == [f"Ancien {n:02d}" for n in
                                                          range(24, 14, -1)]
        assert api_tokens.revoked_count(db.session, place.id) == 25
        slug = place.slug
    browser = Browser(app).login(f"admin.{slug}")
    page = browser.get(f"/structure/{slug}/operateur")
    assert page.status_code == 200, page.text[:300]
    assert "Tablette accueil" in page.text and "Ancien 24" in page.text
    assert "Ancien 00" not in page.text and "15 jetons révoqués plus anciens" in page.text
