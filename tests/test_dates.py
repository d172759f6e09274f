"""Issue 14, dates and figures: the calendar whatever the locale, one clock
for web, API, commands and the ledger, figures that agree with the rules.

Tests marked ``locale_sensitive`` are also run by ``scripts/test.sh`` under
``LC_ALL=fr_FR.UTF-8`` (the suite itself runs under C.UTF-8)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from portal.domain import calendar, clock
from portal.formatting import PARIS, format_eur, format_pct

D = dt.date


# --- item 6: Pentecost whatever the process locale ---------------------------------------

@pytest.mark.locale_sensitive
def test_pentecost_setting_in_the_current_locale():
    assert calendar.pentecost_monday(2021) == D(2021, 5, 24)
    assert calendar.add_working_days(D(2021, 4, 30), 20, pentecost_worked=True) == D(2021, 5, 31)
    assert calendar.add_working_days(D(2021, 4, 30), 20) == D(2021, 6, 1)
    assert calendar.is_working_day(D(2022, 6, 6), pentecost_worked=True)
    assert not calendar.is_working_day(D(2022, 6, 6))


@pytest.mark.locale_sensitive
def test_french_formatting_in_the_current_locale():
    assert format_eur(-123456) == "-1\u202f234,56\u00a0€"
    assert format_pct(100 * 2499 / 5000) == "49,9\u202f%"
    assert format_pct(50.0) == "50,0\u202f%"


def _available(name: str) -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.lower()
    return name.lower().replace("utf-8", "utf8") in out


@pytest.mark.parametrize("name", ["C.UTF-8", "fr_FR.UTF-8"])
def test_calendar_is_the_same_under_each_locale(name):
    """The defect: under LANG=fr_FR.UTF-8 the holiday names are French and
    the Pentecost setting matched the English one (01/06 instead of 31/05)."""
    if not _available(name):
        pytest.skip(f"locale {name} not generated (scripts/system-deps.sh generates it as root)")
    env = {**os.environ, "LANG": name, "LC_ALL": name}
    code = ("import datetime as dt; from portal.domain import calendar; "
            "print(calendar.add_working_days(dt.date(2021, 4, 30), 20, pentecost_worked=True))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "2021-05-31"


# --- item 7: one clock ---------------------------------------------------------------------

def test_one_clock_for_views_api_scans_ledger_and_commands(app):
    """With PORTAL_TODAY the scan (API), its ledger entries, the month
    closing command and the views all live on the pretended day."""
    from portal.domain import operateurs
    from portal.extensions import db
    from portal.models import LedgerEntry, Nature, Scan, Statement
    from portal.web import clock as web_clock
    from scan_helpers import hand_out, new_token, qr, structure
    real = dt.datetime.now(PARIS).date()
    pretended = real - dt.timedelta(days=40)
    app.config["PORTAL_TODAY"] = pretended.isoformat()
    with app.app_context():
        web_clock.sync(app)
        ids = hand_out(db.session, carnets=[951])
        token = new_token(db.session)
        db.session.commit()
        code = qr(db.session.get(__import__("portal.models", fromlist=["Pass"]).Pass, ids[0]))
        service_id = operateurs.active_services(db.session, structure(db.session).id)[0].id
    client = app.test_client()
    response = client.post("/api/v1/scans", json={"code": code, "service_id": service_id},
                           headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "c1"})
    assert response.status_code == 201, response.text
    with app.app_context():
        scan = db.session.execute(sa.select(Scan).where(Scan.pass_id == ids[0])).scalar_one()
        assert scan.scanned_at.astimezone(PARIS).date() == pretended
        entry = db.session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.nature == Nature.SCAN, LedgerEntry.ref_id == scan.id)).scalar_one()
        assert entry.created_at.astimezone(PARIS).date() == pretended
    # The next month, the command closes the pretended month without --period.
    next_month = (pretended.replace(day=1) + dt.timedelta(days=32)).replace(day=3)
    app.config["PORTAL_TODAY"] = next_month.isoformat()
    result = app.test_cli_runner().invoke(args=["close-month"])
    assert result.exit_code == 0, result.output
    assert f"Mois {pretended:%Y-%m} clôturé" in result.output
    with app.app_context():
        statement = db.session.execute(sa.select(Statement).where(
            Statement.period == f"{pretended:%Y-%m}",
            Statement.structure_id == structure(db.session).id)).scalar_one()
        assert any(line.scan_id == scan.id for line in statement.lines)
    with app.test_request_context():
        app.preprocess_request()
        assert clock.today() == next_month
    app.config["PORTAL_TODAY"] = None
    with app.test_request_context():
        app.preprocess_request()
        assert clock.today() == dt.datetime.now(PARIS).date()


def test_the_clock_pretends_a_day_at_the_real_time_of_day():
    try:
        clock.pretend("2021-03-15")
        now = clock.now()
        assert now.tzinfo is not None and now.astimezone(PARIS).date() == D(2021, 3, 15)
        from portal.models import utcnow
        assert utcnow().astimezone(PARIS).date() == D(2021, 3, 15)
    finally:
        clock.pretend(None)
    assert clock.today() == dt.datetime.now(PARIS).date()


# --- item 8: figures that agree with the decision --------------------------------------

@pytest.mark.locale_sensitive
def test_threshold_figures_never_round_up_to_the_threshold():
    from portal.domain import tables
    column = tables.Column("ratio", "Taux", "pct")
    assert column.html(49.98) == "49,9\u00a0%" and column.csv(49.98) == "49,9"
    assert column.html(50.0) == "50,0\u00a0%"
    assert format_pct(100 * 29 / 100) == "29,0\u202f%"      # float noise does not floor to 28,9



# --- item 4: evidence dated in the future is refused ---------------------------------------

def test_evidence_dated_after_today_is_refused(db_session):
    from helpers import new_programme, tenant
    from portal.domain import allocation
    from portal.domain.errors import InvalidInput
    from portal.domain.ledger import Actor
    from portal.models import OpinionKind
    sys_actor = Actor(None, None)
    prog = new_programme(db_session)
    convention = allocation.create_convention(db_session, prog, tenant(db_session, "bondy"),
                                              reference="CONV-FUTUR")
    tomorrow = clock.today() + dt.timedelta(days=1)
    with pytest.raises(InvalidInput, match="futur") as refused:
        allocation.record_signature(db_session, convention, "commune", tomorrow, "Le Maire",
                                    actor=sys_actor)
    assert refused.value.field == "signed_on" and convention.signed_by_commune_on is None
    with pytest.raises(InvalidInput, match="futur"):
        allocation.record_opinion(db_session, convention, hub=tenant(db_session, "francilin"),
                                  kind=OpinionKind.RESEAU, favourable=True, given_on=tomorrow,
                                  evidence="Courriel", actor=sys_actor)
    with pytest.raises(InvalidInput, match="futur"):
        allocation.record_avenant(db_session, convention, signed_on=tomorrow, summary="Prolonge",
                                  new_end=None, actor=sys_actor)
    # Today is fine.
    allocation.record_signature(db_session, convention, "commune", clock.today(), "Le Maire",
                                actor=sys_actor)
    assert convention.signed_by_commune_on == clock.today()
