"""Dashboards and reports (issue 7): every figure equals a recount from the
ledger (or the pass themselves) for random scenarios; every panel and export
is tenant-scoped."""
from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict

import pytest
import sqlalchemy as sa

from helpers import issued_and_activated, new_programme, tenant
from test_allocation import _ready_convention
from portal.domain import (allocation, custody, dashboards, followup, network, opendata, reports,
                           rollups, tables)
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.formatting import PARIS
from portal.models import LedgerEntry, MonthlyReport, Pass, Programme
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature as N

D = dt.date
SYS = Actor(None, None)
COMMUNES = ["bondy", "neuilly-plaisance", "montreuil"]
TODAY = D(2021, 6, 30)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), PARIS)


def build_scenario(session, seed: int) -> Programme:
    """Three communes receive their amorçage, split carnets, hand out, scan,
    contre-paiement and pay at random dates from January to June 2021."""
    rng = random.Random(seed)
    prog = new_programme(session, total_stock=5000, amorcage_size=300, abondement_size=100)
    issued_and_activated(session, prog, 100)
    for slug in COMMUNES:
        convention = _ready_convention(session, prog, slug)
        tranche = allocation.request_amorcage(session, convention, actor=SYS, today=D(2021, 1, 4))
        allocation.confirm_amorcage(session, tranche, actor=SYS, today=D(2021, 1, 4))
        numbers = allocation.available_carnet_numbers(session, prog, 30)
        allocation.ship_tranche(session, tranche, allocation.as_ranges(numbers), actor=SYS,
                                today=D(2021, 1, 15))
        allocation.confirm_reception(session, tranche, received_carnets=len(numbers),
                                     missing_numbers=[], note="", actor=SYS, today=D(2021, 1, 20))
        commune = tenant(session, slug)
        structure = tenant(session, f"{slug}-ccas")
        allocation.split_carnets(session, convention, structure, rng.randint(5, 25), actor=SYS)
        operateur = tenant(session, f"{slug}-centre-social")
        steps = [(N.DISTRIBUTION, S.REPARTI, structure.id), (N.SCAN, S.DISTRIBUE, operateur.id),
                 (N.ANNULATION_SCAN, S.SCANNE, operateur.id),
                 (N.CONTRE_PAIEMENT, S.SCANNE, operateur.id),
                 (N.PAIEMENT, S.CONTRE_PAIEMENT, operateur.id)]
        for _round in range(6):
            for nature, state, holder in steps:
                ids = session.execute(sa.select(Pass.id).where(
                    Pass.programme_id == prog.id, Pass.commune_id == commune.id,
                    Pass.state == state).order_by(Pass.id)).scalars().all()
                if not ids or (nature is N.ANNULATION_SCAN and rng.random() < 0.6):
                    continue
                chosen = rng.sample(ids, rng.randint(1, min(len(ids), 40 if nature is
                                                            N.DISTRIBUTION else 25)))
                custody.move(session, prog, nature=nature, criteria=[Pass.id.in_(chosen)],
                             to_holder_id=holder, actor=SYS,
                             now=_at(D(2021, rng.randint(2, 6), rng.randint(1, 28))))
        if slug == "montreuil":
            allocation.order_sanction(session, convention, "restitution", reason="Test",
                                      quantity=20, actor=SYS, today=D(2021, 5, 3))
    session.commit()
    return prog


def ledger_states(session, prog, until: dt.datetime | None = None) -> dict[int, dict[S, int]]:
    """Pass per commune and state, recounted from the ledger entries alone."""
    result: dict = defaultdict(lambda: defaultdict(int))
    for e in session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.programme_id == prog.id)).scalars():
        if e.commune_id is None or (until is not None and e.created_at >= until):
            continue
        if e.nature is not N.RESTITUTION:
            result[e.commune_id][e.to_state] += e.count
        if e.from_state is not None and e.nature is not N.LIVRAISON:
            result[e.commune_id][e.from_state] -= e.count
    return result


def ledger_sum(session, prog, natures, commune_id, low=None, high=None) -> int:
    total = 0
    for e in session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.programme_id == prog.id if prog is not None else sa.true(),
            LedgerEntry.commune_id == commune_id,
            LedgerEntry.nature.in_(list(natures)))).scalars():
        if (low is None or e.created_at >= low) and (high is None or e.created_at < high):
            total += e.count * (-1 if e.nature in (N.ANNULATION_SCAN, N.RESTITUTION) else 1)
    return total


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_dashboard_figure_equals_a_recount(db_session, seed):
    prog = build_scenario(db_session, seed)
    recount = ledger_states(db_session, prog)
    lines = dashboards.commune_figures(db_session, prog, TODAY)
    assert [line.name for line in lines] == sorted(line.name for line in lines)
    assert len(lines) == 3
    for line in lines:
        states = recount[line.commune_id]
        assert line.held == sum(states.values())
        assert line.reparti == states[S.REPARTI]
        assert line.livre == states[S.LIVRE]
        assert line.handed_out == sum(states[s] for s in dashboards.HANDED_OUT)
        assert line.scanned == sum(states[s] for s in dashboards.SCANNED)
        assert line.consumed == states[S.CONTRE_PAIEMENT] + states[S.PAYE]
        # Same as the allocation module's own count (art. 5).
        c = allocation.consumption(db_session, prog)[line.commune_id]
        assert (c.held, c.consumed) == (line.held, line.consumed)
        pace = ledger_sum(db_session, prog, [N.CONTRE_PAIEMENT], line.commune_id,
                          _at(TODAY - dt.timedelta(days=90)).replace(hour=0),
                          _at(TODAY + dt.timedelta(days=1)).replace(hour=0))
        assert line.pace_per_day == pace / dashboards.PACE_DAYS
        if not line.threshold_reached and pace:
            assert line.threshold_on == TODAY + dt.timedelta(
                days=-(-line.to_threshold * 90 // pace))
    # Totals by state equal the pass table (and the rollups a recount).
    dash = dashboards.metropole_dashboard(db_session, prog, TODAY)
    table = defaultdict(int)
    for (state, _holder), n in custody.state_counts(db_session, prog.id).items():
        table[state] += n
    assert dash.by_state == {s: n for s, n in table.items() if n}
    assert rollups.positions(db_session, prog.id) == rollups.recount_positions(db_session, prog.id)
    # Carnets: recount from the pass themselves.
    by_carnet: dict = defaultdict(set)
    for carnet, state in db_session.execute(sa.select(Pass.carnet_id, Pass.state).where(
            Pass.programme_id == prog.id)):
        by_carnet[carnet].add(S(state))
    assert dash.carnets.emis == 100
    assert dash.carnets.injectes == sum(1 for s in by_carnet.values() if s & dashboards.HANDED_OUT)
    assert dash.carnets.entames == sum(1 for s in by_carnet.values() if s & dashboards.SCANNED)
    assert dash.carnets.non_injectes == 100 - dash.carnets.injectes
    # Stock, deadlines, no late delivery (all received).
    assert dash.stock == allocation.stock(db_session, prog)
    assert dash.late_tranches == []
    assert [d.on for d in dash.deadlines] == sorted(d.on for d in dash.deadlines)
    # Stock pace: 900 pass committed on 04/01 is more than 90 days before TODAY.
    assert dash.stock_runs_out_on is None
    # Monthly series (evolution panels): the ledger's entries per Paris month and nature.
    natures = [N.DISTRIBUTION, N.SCAN, N.CONTRE_PAIEMENT]
    expected: dict = defaultdict(lambda: defaultdict(int))
    for e in db_session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.programme_id == prog.id, LedgerEntry.nature.in_(natures))).scalars():
        expected[e.created_at.astimezone(PARIS).strftime("%Y-%m")][e.nature] += e.count
    assert dashboards.monthly_flows(db_session, prog.id, natures) == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_monthly_report_and_open_data_equal_the_ledger(db_session, seed):
    prog = build_scenario(db_session, seed)
    for month in ("2021-03", "2021-06"):
        report, created = reports.generate(db_session, prog, month, actor=SYS)
        assert created
        first, after = reports.parse_month(month)
        low, high = _at(first).replace(hour=0), _at(after).replace(hour=0)
        states = ledger_states(db_session, prog, high)
        for line in report.content["communes"]:
            cid = line["commune_id"]
            assert line["cumul"]["held"] == sum(states[cid].values())
            assert line["cumul"]["handed_out"] == ledger_sum(db_session, prog, [N.DISTRIBUTION],
                                                             cid, high=high)
            assert line["cumul"]["scanned"] == ledger_sum(
                db_session, prog, [N.SCAN, N.ANNULATION_SCAN], cid, high=high)
            assert line["cumul"]["consumed"] == ledger_sum(db_session, prog, [N.CONTRE_PAIEMENT],
                                                           cid, high=high)
            assert line["mois"]["consumed"] == ledger_sum(db_session, prog, [N.CONTRE_PAIEMENT],
                                                          cid, low, high)
        total = report.content["total"]["cumul"]
        assert total["held"] == sum(c["cumul"]["held"] for c in report.content["communes"])
    # Idempotent: same month → same report; an explicit new version otherwise.
    again, created = reports.generate(db_session, prog, "2021-06", actor=SYS)
    assert not created and again.id == report.id
    v2, created = reports.generate(db_session, prog, "2021-06", actor=SYS, regenerate=True)
    assert created and v2.version == 2 and v2.sha256 == report.sha256
    with pytest.raises(InvalidInput):
        reports.parse_month("2021-13")
    # Exports: CSV with BOM and ';', a commune sees its own line and the total only.
    bondy = tenant(db_session, "bondy")
    text = reports.to_csv(v2, bondy.id)
    assert text.startswith("\ufeff") and ";" in text
    assert "Bondy" in text and "Montreuil" not in text and "Total de tous les territoires" in text
    assert reports.to_pdf(v2, bondy.id).startswith(b"%PDF")
    # Open data: raw counts equal the ledger; small cells are suppressed.
    raw = opendata.raw_counts(db_session)
    for (cid, month), values in raw.items():
        first, after = reports.parse_month(month)
        low, high = _at(first).replace(hour=0), _at(after).replace(hour=0)
        assert values["remis"] == ledger_sum(db_session, None, [N.DISTRIBUTION], cid, low, high)
        assert values["consommes"] == ledger_sum(db_session, None, [N.CONTRE_PAIEMENT], cid,
                                                 low, high)
    for row in opendata.rows(db_session):
        for key, _n in opendata.MEASURES:
            assert row[key] is None or row[key] == 0 or row[key] >= opendata.THRESHOLD


def test_table_exports_csv_and_xlsx():
    table = tables.Table("t", "Titre", [tables.Column("a", "A"), tables.Column("n", "N", "int"),
                                        tables.Column("p", "P", "pct")],
                         [{"a": "x;y", "n": 1234, "p": 12.345}], footer={"a": "Total", "n": 1})
    text = tables.to_csv(table)
    assert text == '\ufeffA;N;P\r\n"x;y";1234;12,3\r\nTotal;1;\r\n'
    assert table.html_rows() == [["x;y", "1\u202f234", "12,3\u00a0%"]]
    from openpyxl import load_workbook
    import io
    sheet = load_workbook(io.BytesIO(tables.to_xlsx(table))).active
    assert [c.value for c in sheet[2]] == ["x;y", 1234, 12.3]


def test_charts_are_accessible_svg():
    from portal.web import charts
    bar = charts.bar_chart("Pass par commune", ["Bondy", "<b>"], [10, 0])
    assert 'role="img"' in bar.svg and "aria-labelledby" in bar.svg and "<title id=" in bar.svg
    assert "&lt;b&gt;" in bar.svg and "style=" not in bar.svg and bar.rows[0] == ["Bondy", "10"]
    line = charts.line_chart("Évolution", ["2021-01", "2021-02"], {"remis": [1, 5]})
    assert "<polyline" in line.svg and line.rows == [["2021-01", "1"], ["2021-02", "5"]]


def _x_labels(svg: str) -> list[tuple[float, str]]:
    return [(float(x), text) for x, text in re.findall(
        r'<text class="x-label" x="([\d.]+)"[^>]*>([^<]*)</text>', str(svg))]


@pytest.mark.parametrize("labels", [
    [f"{day:02d}/11/2026" for day in range(1, 31)],            # thirty days
    [f"2026-{month:02d}" for month in range(1, 13)] * 3,       # three years of months
    ["2026-11"], ["2026-10", "2026-11"],
])
def test_line_chart_axis_labels_never_overlap(labels):
    from portal.web import charts
    chart = charts.line_chart("Scans par jour", labels, {"scans": [0] * len(labels)})
    drawn = _x_labels(chart.svg)
    assert drawn and drawn[0][1] == labels[0]           # the first label is always there
    width = max(charts.label_width(text) for _x, text in drawn)
    gaps = [b[0] - a[0] for a, b in zip(drawn, drawn[1:])]
    assert all(gap >= width for gap in gaps), (gaps, width)
    if len(labels) <= 2:
        assert [text for _x, text in drawn] == labels    # nothing dropped when it fits


def test_a_folded_table_says_aucune_donnee_for_runs_of_empty_days():
    days = [{"day": f"{d:02d}/11", "n": 3 if d in (1, 15) else 0} for d in range(1, 31)]
    table = tables.Table("t", "Scans", [tables.Column("day", "Jour"),
                                        tables.Column("n", "Scans", "int")], days,
                         chart=("line", "day", "n"))
    rows = table.html_rows_folded()
    assert [r["cells"] for r in rows if not r["empty"]] == [["01/11", "3"], ["15/11", "3"]]
    assert [r["label"] for r in rows if r["empty"]] == ["02/11 à 14/11", "16/11 à 30/11"]
    assert len(rows) == 4
    # A single empty day between two busy ones stays a row of its own.
    short = tables.Table("t", "Scans", table.columns, [
        {"day": "01/11", "n": 1}, {"day": "02/11", "n": 0}, {"day": "03/11", "n": 2}])
    assert [r["empty"] for r in short.html_rows_folded()] == [False, False, False]
    # The exports keep every row.
    assert len(tables.to_csv(table).strip().splitlines()) == 31


def test_experience_report_is_frozen_once_transmitted(db_session):
    prog = new_programme(db_session)
    convention = _ready_convention(db_session, prog, "bondy")
    assert prog.experience_due_on == D(2021, 9, 1)
    texts = {key: "" for key, _ in followup.HEADINGS}
    report = followup.save_experience(db_session, convention, texts | {"contributions": "Oui"},
                                      submit=False, actor=SYS)
    assert report.status.value == "brouillon"
    with pytest.raises(InvalidInput, match="chaque rubrique"):
        followup.save_experience(db_session, convention, texts, submit=True, actor=SYS)
    full = {key: f"Texte {key}" for key, _ in followup.HEADINGS}
    followup.save_experience(db_session, convention, full, submit=True, actor=SYS)
    with pytest.raises(Conflict, match="plus être modifié"):
        followup.save_experience(db_session, convention, full, submit=False, actor=SYS)
    meeting = followup.record_meeting(db_session, prog, held_on=D(2021, 3, 2), topic="Point 1",
                                      attendee_ids=[convention.commune_id])
    assert meeting.attendees == [convention.commune_id]
    with pytest.raises(InvalidInput):
        followup.record_meeting(db_session, prog, held_on=D(2021, 3, 2), topic="x",
                                attendee_ids=[tenant(db_session, "montreuil").id])


def test_validity_timeline():
    prog = Programme(valid_until=D(2021, 12, 31), tolerance_until=D(2022, 1, 31))
    steps = network.validity_timeline(prog, D(2021, 12, 1))
    assert [m.on for m in steps] == [D(2021, 12, 1), D(2021, 12, 16), D(2021, 12, 24),
                                     D(2021, 12, 31), D(2022, 1, 31), D(2022, 2, 6)]
    assert steps[0].days_left == 0


# ------------------------------------------------------------------ pages and scoping

def _links(text, pattern):
    return [u.replace("&amp;", "&") for u in re.findall(pattern, text)]


def test_pages_panels_and_exports_are_tenant_scoped(app, browser_factory):
    from portal.extensions import db
    with app.app_context():
        prog = build_scenario(db.session, 9)
        reports.generate(db.session, prog, "2021-06", actor=SYS)
        db.session.commit()
        pid = prog.id
        report_id = db.session.execute(sa.select(MonthlyReport.id).where(
            MonthlyReport.programme_id == pid)).scalar_one()
    app.config["PORTAL_TODAY"] = "2021-06-30"
    mgp = browser_factory().login("mgp.admin")
    page = mgp.get(f"/metropole/mgp/tableau-de-bord/{pid}")
    assert page.status_code == 200 and "Épuisement du stock" in page.text
    panels = _links(page.get_data(as_text=True), r'hx-get="([^"]+)"')
    assert len(panels) == 5
    for url in panels:
        fragment = mgp.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<html" not in fragment.text
        for export in _links(fragment.get_data(as_text=True), r'href="([^"]+\.(?:csv|xlsx))"'):
            response = mgp.get(export)
            assert response.status_code == 200
            if export.endswith(".csv"):
                assert response.get_data().startswith("\ufeff".encode())
    communes = mgp.get(f"/metropole/mgp/tableau-de-bord/{pid}/communes.csv").text
    assert "Bondy" in communes and "Montreuil" in communes
    # The htmx filter of the communes panel, and its export with the same filter.
    fragment = mgp.get(f"/metropole/mgp/tableau-de-bord/{pid}/panneau/communes?filtre=seuil",
                       headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'hx-trigger="change"' in fragment.text
    with app.app_context():
        reached = [line.name for line in dashboards.commune_figures(
            db.session, db.session.get(Programme, pid), TODAY) if line.threshold_reached]
    filtered = mgp.get(f"/metropole/mgp/tableau-de-bord/{pid}/communes.csv?filtre=seuil").text
    assert all((name in filtered) == (name in reached) for name in ("Bondy", "Montreuil"))
    assert mgp.get(f"/metropole/mgp/rapport/{report_id}.pdf").get_data().startswith(b"%PDF")
    # A commune sees its own figures only, in pages, panels, exports and reports.
    bondy = browser_factory().login("referent.bondy")
    assert bondy.get(f"/commune/bondy/tableau-de-bord/{pid}").status_code == 200
    for panel in ("consommation", "etats", "structures", "publics", "questionnaire", "evolution"):
        for fmt in ("csv", "xlsx"):
            assert bondy.get(f"/commune/bondy/tableau-de-bord/{pid}/{panel}.{fmt}").status_code == 200
    csv_text = bondy.get(f"/commune/bondy/tableau-de-bord/{pid}/consommation.csv").text
    assert "Bondy" in csv_text and "Montreuil" not in csv_text and "Neuilly" not in csv_text
    report_page = bondy.get(f"/commune/bondy/rapport/{report_id}").text
    assert "Bondy" in report_page and "Montreuil" not in report_page
    assert "Montreuil" not in bondy.get(f"/commune/bondy/rapport/{report_id}.csv").text
    # A commune without a convention for the programme: not found.
    other = browser_factory().login("referent.pantin")
    assert other.get(f"/commune/pantin/tableau-de-bord/{pid}").status_code == 404
    assert other.get(f"/commune/pantin/tableau-de-bord/{pid}/consommation.csv").status_code == 404
    # Another commune's URL: 404 (membership); MGP pages to a commune user: 404.
    assert bondy.get(f"/commune/montreuil/tableau-de-bord/{pid}").status_code == 404
    assert bondy.get(f"/metropole/mgp/tableau-de-bord/{pid}").status_code == 404
    # Hub and #APTIC pages.
    assert browser_factory().login("hub.admin").get("/hub/francilin/reseau").status_code == 200
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/tableau-de-bord")
    assert page.status_code == 200 and "reddition des comptes" in page.text
    for url in _links(page.get_data(as_text=True), r'hx-get="([^"]+)"'):
        assert aptic.get(url, headers={"HX-Request": "true"}).status_code == 200
    # Open data is public and suppressed.
    anonymous = browser_factory()
    data = anonymous.get("/donnees-ouvertes/consommation.json").get_json()
    assert data["seuil"] == 11 and data["lignes"]
    assert anonymous.get("/donnees-ouvertes/consommation.csv").get_data().startswith(
        "\ufeff".encode())


def test_monthly_report_button_and_command_send_mail(app, browser_factory):
    from portal.extensions import db
    with app.app_context():
        prog = build_scenario(db.session, 3)
        pid = prog.id
    app.extensions["outbox"] = outbox = []
    mgp = browser_factory().login("mgp.admin")
    response = mgp.post(f"/metropole/mgp/rapports/{pid}/generer", {"month": "2021-05"})
    assert response.status_code == 303
    assert len(outbox) == 3 and all("2021-05" in m["Subject"] for m in outbox)
    mgp.post(f"/metropole/mgp/rapports/{pid}/generer", {"month": "2021-05"})
    assert len(outbox) == 3                                    # idempotent: no new mail
    agent = browser_factory().login("mgp.agent")
    assert agent.post(f"/metropole/mgp/rapports/{pid}/generer",
                      {"month": "2021-05"}).status_code == 403
    runner = app.test_cli_runner()
    result = runner.invoke(args=["monthly-report", "--month", "2021-05"])
    assert result.exit_code == 0 and "inchangé" in result.output
    result = runner.invoke(args=["monthly-report", "--month", "2021-04"])
    assert result.exit_code == 0 and "créé" in result.output


# ------------------------------------------------------------------ opérateurs (issue 7 hooks)

OPERATEURS = ["bondy-centre-social", "montreuil-mediatheque", "bondy-mediatheque"]


def operateur_scenario(session, seed: int):
    """Random scans by three opérateurs over the last week (offline scans
    carry their own time), a few undone, a double scan, the month closed,
    statements validated and some paid, more scans afterwards, and
    opérateurs in every qualification state."""
    from scan_helpers import hand_out, programme_of, qr, structure
    from portal.domain import operateurs, scanning, settlement
    from portal.domain.permissions import TenantKind
    from portal.models import Channel, Qualification, Scan, Tenant, utcnow
    rng = random.Random(seed)
    prog = programme_of(session)
    ids = hand_out(session, carnets=range(901, 905))
    rng.shuffle(ids)
    now = utcnow()
    made = []

    def scan(pass_id, slug, key):
        scanner = scanning.Scanner(structure(session, slug), None)
        services = operateurs.active_services(session, scanner.structure.id)
        back = dt.timedelta(days=rng.randint(0, 6), minutes=rng.randint(0, 600))
        data = scanning.ScanInput(code=qr(session.get(Pass, pass_id)),
                                  service_id=rng.choice(services).id,
                                  channel=Channel.HORS_LIGNE if back else Channel.SAISIE,
                                  occurred_at=now - back if back else None)
        return scanning.consume_once(session, data, scanner, key)

    for n, pass_id in enumerate(ids[:28]):
        slug = rng.choice(OPERATEURS)
        assert scan(pass_id, slug, f"k-{seed}-{n}").status == 201
        made.append((pass_id, slug))
    # A second scan of a used pass is refused and flagged (double scan anomaly).
    assert scan(made[0][0], OPERATEURS[1], f"double-{seed}").status == 409
    for pass_id, slug in rng.sample(made, 3):
        found = session.execute(sa.select(Scan).where(
            Scan.pass_id == pass_id, Scan.cancelled_at.is_(None))).scalar_one()
        scanning.undo(session, found, scanning.Scanner(structure(session, slug), None),
                      reason="erreur de saisie", window_minutes=30)
        session.commit()
    period = dt.datetime.now(PARIS).strftime("%Y-%m")
    statements = settlement.close_month(session, period,
                                        now=settlement.period_end(period) + dt.timedelta(hours=1))
    session.commit()
    for statement in statements:
        if rng.random() < 0.8:
            settlement.validate(session, statement, actor=SYS)
            if rng.random() < 0.5:
                settlement.mark_paid(session, statement, bank_reference=f"VIR-{statement.id}",
                                     paid_on=D.today(), actor=SYS)
    session.commit()
    # Scans after the close: not on any statement yet.
    for n, pass_id in enumerate(ids[28:34]):
        assert scan(pass_id, rng.choice(OPERATEURS), f"late-{seed}-{n}").status == 201
    # Qualification pipeline: one new opérateur without a profile, one
    # suspended, one with a new IBAN waiting for #APTIC.
    bondy = tenant(session, "bondy")
    session.add(Tenant(kind=TenantKind.STRUCTURE, slug=f"bondy-nouveau-{seed}",
                       name="Nouveau lieu de Bondy", parent_id=bondy.id, is_operateur=True))
    operateurs.set_qualification(session, structure(session, "bondy-mediatheque"),
                                 Qualification.SUSPENDU, reason="Contrôle", actor=SYS)
    operateurs.submit_bank_details(session, structure(session, "montreuil-mediatheque"),
                                   holder="Médiathèque", iban="FR7630006000011234567890189",
                                   bic="BNPAFRPPXXX", actor=SYS)
    session.commit()
    return prog


def _ledger_scans(session, structure_id) -> tuple[int, int]:
    """Live scans of a structure recounted from the ledger: SCAN entries to
    it minus ANNULATION_SCAN entries from it (pass, cents)."""
    n = cents = 0
    for e in session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.nature.in_([N.SCAN, N.ANNULATION_SCAN]))).scalars():
        if e.nature is N.SCAN and e.to_holder_id == structure_id:
            n, cents = n + e.count, cents + e.amount_cents
        elif e.nature is N.ANNULATION_SCAN and e.from_holder_id == structure_id:
            n, cents = n - e.count, cents - e.amount_cents
    return n, cents


@pytest.mark.parametrize("seed", [11, 12])
def test_operateur_panels_equal_a_recount(db_session, seed):
    from portal.domain import operateur_panels as op
    from portal.models import (Anomaly, Convention, OperateurProfile, Qualification, Scan,
                               Statement, StatementLine, StatementStatus, Tenant)
    from scan_helpers import structure
    prog = operateur_scenario(db_session, seed)
    today = dt.datetime.now(PARIS).date()
    all_statements = db_session.execute(sa.select(Statement)).scalars().all()
    for slug in OPERATEURS:
        s = structure(db_session, slug)
        live = db_session.execute(sa.select(Scan).where(
            Scan.structure_id == s.id, Scan.cancelled_at.is_(None))).scalars().all()
        # Scans per Paris day of the service, the last 30 days (zeros included).
        by_day = op.scans_by_day_table(db_session, s, today)
        rows = list(by_day.rows)
        assert len(rows) == op.DAYS and rows[-1]["date"] == today
        for row in rows:
            mine = [x for x in live if x.scanned_at.astimezone(PARIS).date() == row["date"]]
            assert (row["n"], row["cents"]) == (len(mine), sum(x.amount_cents for x in mine))
        # Every scan is less than a week old: the window's total is the ledger's.
        assert (by_day.footer["n"], by_day.footer["cents"]) == _ledger_scans(db_session, s.id)
        # Per service.
        by_service = op.scans_by_service_table(db_session, s, today)
        expected = defaultdict(lambda: [0, 0])
        for x in live:
            expected[x.service_name][0] += 1
            expected[x.service_name][1] += x.amount_cents
        assert {r["service"]: [r["n"], r["cents"]] for r in by_service.rows} == dict(expected)
        assert (by_service.footer["n"], by_service.footer["cents"]) == _ledger_scans(
            db_session, s.id)
        # Its statements only, with their amounts and payment status.
        own = {st.id: st for st in all_statements if st.structure_id == s.id}
        statement_rows = op.own_statements(db_session, s)
        assert {r["id"] for r in statement_rows} == set(own)
        for r in statement_rows:
            st = own[r["id"]]
            lines = db_session.execute(sa.select(StatementLine).where(
                StatementLine.statement_id == st.id)).scalars().all()
            assert r["cents"] == sum(line.amount_cents for line in lines)
            assert r["pass"] == sum(1 for line in lines if line.scan_id is not None)
            assert r["state"] is st.status
            assert r["status"] == (f"payé le {st.paid_on:%d/%m/%Y}"
                                   if st.status is StatementStatus.PAYE
                                   else op.PAYMENT_STATUS[st.status])
            # The ledger moved exactly these pass when validating and paying.
            for nature, done in ((N.CONTRE_PAIEMENT, st.status is not StatementStatus.BROUILLON),
                                 (N.PAIEMENT, st.status is StatementStatus.PAYE)):
                moved = db_session.execute(sa.select(sa.func.coalesce(
                    sa.func.sum(LedgerEntry.count), 0)).where(
                    LedgerEntry.nature == nature, LedgerEntry.ref_type == "releve",
                    LedgerEntry.ref_id == st.id)).scalar()
                assert moved == (r["pass"] if done else 0)
        table = op.own_statements_table(db_session, s, today)
        assert table.footer["cents"] == sum(st.total_cents for st in own.values())
    # #APTIC: the qualification pipeline of the programme's territory.
    communes = set(db_session.execute(sa.select(Convention.commune_id).where(
        Convention.programme_id == prog.id)).scalars())
    places = [t for t in db_session.execute(sa.select(Tenant).where(
        Tenant.is_operateur.is_(True))).scalars() if t.parent_id in communes]
    profiles = {p.structure_id: p for p in db_session.execute(
        sa.select(OperateurProfile)).scalars()}
    state = {t.id: profiles[t.id].qualification if t.id in profiles else Qualification.EN_ATTENTE
             for t in places}
    table = op.qualification_table(db_session, prog, today)
    assert {r["state"]: r["n"] for r in table.rows} == {
        q.label: sum(1 for v in state.values() if v is q) for q in Qualification}
    assert table.footer["n"] == len(places)
    assert {r["state"]: r["approved"] for r in table.rows} == {
        q.label: sum(1 for t in places if state[t.id] is q and t.id in profiles
                     and profiles[t.id].commune_approved_at is not None) for q in Qualification}
    waiting = op.awaiting_review_table(db_session, prog, today)
    assert {r["name"] for r in waiting.rows} == {"Nouveau lieu de Bondy",
                                                "Médiathèque de Montreuil"}
    # Statements to pay: validated, not paid, carrying pass of the programme.
    to_pay = [st for st in all_statements if st.status is StatementStatus.VALIDE]
    table = op.statements_to_pay_table(db_session, prog, today)
    assert sorted((r["name"], r["total"]) for r in table.rows) == sorted(
        (st.structure.name, st.total_cents) for st in to_pay)
    assert table.footer["share"] == sum(line.amount_cents for st in to_pay for line in st.lines
                                        if line.programme_id == prog.id)
    # Open anomalies of the programme (the double scan at least).
    anomalies = db_session.execute(sa.select(Anomaly).where(
        Anomaly.programme_id == prog.id, Anomaly.reviewed_at.is_(None))).scalars().all()
    rows = list(op.anomalies_table(db_session, prog, today).rows)
    assert len(rows) == len(anomalies) >= 1
    assert sorted(r["kind"] for r in rows) == sorted(a.kind.label for a in anomalies)
    # Exports say what the screen says.
    for builder in list(dashboards.MANDATAIRE_PANELS.values()):
        t = builder[1](db_session, prog, today)
        assert tables.to_csv(t).count("\r\n") == 1 + len(t.all_rows())
        assert tables.to_xlsx(t)[:2] == b"PK"


def test_operateur_dashboard_is_scoped_and_gated(app, browser_factory):
    from portal.extensions import db
    with app.app_context():
        operateur_scenario(db.session, 21)
        from scan_helpers import structure
        from portal.models import Statement
        mine = {s.period: s.total_cents for s in db.session.execute(sa.select(Statement).where(
            Statement.structure_id == structure(db.session, OPERATEURS[0]).id)).scalars()}
    admin = browser_factory().login(f"admin.{OPERATEURS[0]}")
    home = admin.get(f"/structure/{OPERATEURS[0]}/")
    assert f'/structure/{OPERATEURS[0]}/tableau-de-bord"' in home.text      # in its navigation
    page = admin.get(f"/structure/{OPERATEURS[0]}/tableau-de-bord")
    assert page.status_code == 200 and "Pass scannés ce mois-ci" in page.text
    panels = _links(page.get_data(as_text=True), r'hx-get="([^"]+)"')
    assert len(panels) == 3
    for url in panels:
        fragment = admin.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<html" not in fragment.text
        if "scans" in url:
            assert 'role="img"' in fragment.text and "<title id=" in fragment.text
            # The table alternative is folded under the chart, a quiet month in one row.
            assert '<details class="chart-data">' in fragment.text
            folded = fragment.text.split('<details class="chart-data">', 1)[1]
            if "service" not in url:
                # Scans of the last week only: the days before are one « Aucune donnée » row.
                assert folded.count('<tr class="empty-run">') >= 1
                assert folded.count("<tr") < 30
        exports = _links(fragment.get_data(as_text=True), r'href="([^"]+\.(?:csv|xlsx))"')
        assert len(exports) == 2
        for export in exports:
            assert admin.get(export).status_code == 200
    csv_text = admin.get(f"/structure/{OPERATEURS[0]}/tableau-de-bord/releves.csv").text
    assert len(csv_text.strip().splitlines()) == 2 + len(mine)            # header, rows, total
    total = tables.Column("c", "c", "eur").csv(sum(mine.values()))
    assert csv_text.strip().splitlines()[-1].startswith("Total;;") and f";{total};" in csv_text
    agent = browser_factory().login(f"operateur.{OPERATEURS[0]}")
    assert agent.get(f"/structure/{OPERATEURS[0]}/tableau-de-bord").status_code == 200
    # Another opérateur's dashboard, panels and exports: not found.
    for url in (f"/structure/{OPERATEURS[1]}/tableau-de-bord",
                f"/structure/{OPERATEURS[1]}/tableau-de-bord/panneau/releves",
                f"/structure/{OPERATEURS[1]}/tableau-de-bord/releves.csv",
                f"/structure/{OPERATEURS[1]}/tableau-de-bord/scans-jour.xlsx"):
        assert admin.get(url).status_code == 404
    assert admin.get(f"/structure/{OPERATEURS[0]}/tableau-de-bord/panneau/inconnu").status_code == 404
    # A prescripteur (no SCAN_PASS) is refused, even in a place that also scans.
    prescripteur = browser_factory().login("prescripteur.bondy-centre-social")
    assert prescripteur.get("/structure/bondy-centre-social/tableau-de-bord").status_code == 403
    assert "tableau-de-bord" not in prescripteur.get("/structure/bondy-centre-social/").text
    # #APTIC sees the registered panels, lazily, with charts and exports.
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/tableau-de-bord")
    urls = _links(page.get_data(as_text=True), r'hx-get="([^"]+)"')
    for name in ("qualification", "a-examiner", "releves", "anomalies"):
        assert any(u.endswith(f"/panneau/{name}") for u in urls), name
    for url in urls:
        fragment = aptic.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        for export in _links(fragment.get_data(as_text=True), r'href="([^"]+\.(?:csv|xlsx))"'):
            assert aptic.get(export).status_code == 200
    # A commune never sees another commune's dashboard.
    bondy = browser_factory().login("referent.bondy")
    assert bondy.get("/commune/montreuil/tableau-de-bord").status_code == 404


# ------------------------------------------------------------------ reddition (bench goal)

@pytest.mark.parametrize("seed", [31, 32])
def test_reddition_equals_a_recount_of_the_ledger(db_session, seed):
    """The year's reddition, read from the rollups, equals a recount of the
    ledger entries: operations per commune and nature in the period, and
    balances (pass en circulation) before and after it."""
    from portal.domain import reddition
    from portal.models import Mandate, Tenant
    build_scenario(db_session, seed)
    rng = random.Random(seed)
    mandate = db_session.execute(sa.select(Mandate)).scalar_one()
    start = D(2021, rng.randint(1, 4), rng.randint(1, 28))
    end = D(2021, rng.randint(5, 6), rng.randint(1, 28))
    statement = reddition.build_statement(db_session, mandate, start, end, D.today())
    assert statement.mismatches == [] and statement.ledger_ok
    low, high = reddition._bounds(start, end)
    programmes = [p.id for p in reddition.programmes_of_mandate(db_session, mandate)]
    face = {p.id: p.face_value_cents for p in reddition.programmes_of_mandate(db_session, mandate)}
    opening, closing = defaultdict(int), defaultdict(int)
    operations = defaultdict(lambda: [0, 0])
    for e in db_session.execute(sa.select(LedgerEntry).where(
            LedgerEntry.programme_id.in_(programmes), LedgerEntry.created_at < high)).scalars():
        delta = ((e.count if e.to_state in reddition.CIRCULATION else 0)
                 - (e.count if e.from_state in reddition.CIRCULATION else 0))
        closing[e.commune_id] += delta
        if e.created_at < low:
            opening[e.commune_id] += delta
        else:
            operations[(e.commune_id, e.nature)][0] += e.count
            operations[(e.commune_id, e.nature)][1] += e.amount_cents
    names = dict(db_session.execute(sa.select(Tenant.id, Tenant.name)).all())
    by_name = {row.name: row for row in statement.rows}
    for commune_id in set(closing) - {None}:
        row = by_name[names[commune_id]]
        assert row.opening.count == opening[commune_id]
        assert row.closing.count == closing[commune_id]
        assert row.closing.cents == closing[commune_id] * face[next(iter(face))]
    got = {(cid, n): [a.count, a.cents] for cid, row in
           ((next((k for k, v in names.items() if v == r.name and k in closing), None), r)
            for r in statement.rows if r.name != reddition.STOCK_ROW)
           for n, a in row.natures.items()}
    assert got == {k: v for k, v in operations.items() if k[0] is not None}
    for nature, amount in statement.total.natures.items():
        assert [amount.count, amount.cents] == [
            sum(v[0] for k, v in operations.items() if k[1] is nature),
            sum(v[1] for k, v in operations.items() if k[1] is nature)]


def test_reddition_verifies_the_chain_since_the_last_anchor(db_session):
    """The reddition recomputes the entries after the last anchor only (the
    anchor job verified the earlier ones); the lazy full verification
    recomputes them all, so an edit older than the anchor is still found."""
    from helpers import drop_ledger_protection
    from portal.domain import ledger, reddition
    from portal.models import Mandate
    from scan_helpers import hand_out
    mandate = db_session.execute(sa.select(Mandate)).scalar_one()
    programmes = reddition.programmes_of_mandate(db_session, mandate)
    today = D.today()

    def statement():
        return reddition.build_statement(db_session, mandate, D(2000, 1, 1), today, today)

    first = statement()
    assert first.ledger_ok and all("journal entier" in s for s in first.ledger_scope)
    for p in programmes:
        ledger.anchor(db_session, p.id, "2000-01")
    db_session.commit()
    heads = {p.id: db_session.get(ledger.LedgerHead, p.id).seq for p in programmes}
    hand_out(db_session, carnets=[931])
    after = statement()
    added = {p.id: db_session.get(ledger.LedgerHead, p.id).seq - heads[p.id] for p in programmes}
    assert after.ledger_ok and after.mismatches == []
    for p, scope in zip(programmes, after.ledger_scope):
        assert f"{added[p.id]} écriture(s) vérifiée(s) depuis la clôture 2000-01" in scope
    # An entry older than the anchor edited behind the database's back: the
    # reddition's check does not recompute it, the full verification does.
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("UPDATE ledger_entries SET reason = 'falsifié' WHERE id IN "
                               "(SELECT entry_id FROM ledger_seals WHERE seq = 1)"))
    db_session.commit()
    assert statement().ledger_ok
    assert not all(report.ok for _p, report in reddition.full_verification(db_session, mandate))
    # An entry after the anchor edited: the reddition shows it.
    changed = next(p for p in programmes if added[p.id])
    db_session.execute(sa.text("UPDATE ledger_entries SET reason = 'falsifié' WHERE id = "
                               "(SELECT entry_id FROM ledger_seals WHERE programme_id = :p "
                               "AND seq = :s)"),
                       {"p": changed.id, "s": heads[changed.id] + 1})
    db_session.commit()
    broken = statement()
    assert not broken.ledger_ok and any("intégrité" in m for m in broken.mismatches)
    # The anchor job refuses to anchor a broken chain.
    from flask import current_app
    result = current_app.test_cli_runner().invoke(args=["ledger", "anchor", "--period", "2000-02"])
    assert result.exit_code == 1 and "non clôturé" in result.output
    assert db_session.execute(sa.select(sa.func.count()).select_from(ledger.LedgerAnchor).where(
        ledger.LedgerAnchor.programme_id == changed.id,
        ledger.LedgerAnchor.period == "2000-02")).scalar() == 0


def test_reddition_page_offers_the_full_verification_lazily(app, browser_factory):
    from portal.extensions import db
    from portal.models import Mandate
    with app.app_context():
        mandate_id = db.session.execute(sa.select(Mandate.id)).scalar_one()
    for login, base in (("aptic.admin", "/mandataire/aptic"), ("mgp.admin", "/metropole/mgp")):
        browser = browser_factory().login(login)
        page = browser.get(f"{base}/mandats/{mandate_id}/reddition?debut=2000-01-01&fin=2100-01-01")
        assert page.status_code == 200 and "Intégrité du journal" in page.text
        url = f"{base}/mandats/{mandate_id}/reddition/verification"
        assert f'hx-get="{url}"' in page.text
        fragment = browser.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "intègre" in fragment.text
        assert "<html" not in fragment.text
        assert "<html" in browser.get(url).text                 # works without JavaScript
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "anchor", "--period", "2000-01"])
    assert result.exit_code == 0 and "nouvelles écritures vérifiées" in result.output


def test_dashboards_open_on_the_current_programme_and_link_the_others(app, browser_factory):
    """MGP and a commune land on the programme still running (AMI 2; AMI 1
    ended in 2022), with a link to the other one."""
    from portal.extensions import db
    with app.app_context():
        ami1, ami2 = (db.session.execute(sa.select(Programme).where(Programme.prefix == prefix))
                      .scalar_one() for prefix in ("MGP1", "MGP2"))
        assert dashboards.current_programme([ami1, ami2], dt.date(2021, 6, 1)).id == ami2.id
        assert dashboards.current_programme([ami1], dt.date(2030, 1, 1)).id == ami1.id
        assert dashboards.current_programme([], dt.date(2030, 1, 1)) is None
        ami1_id, ami2_id = ami1.id, ami2.id
    for login, base in (("mgp.agent", "/metropole/mgp"),
                        ("referent.neuilly-plaisance", "/commune/neuilly-plaisance")):
        user = browser_factory().login(login)
        response = user.get(f"{base}/tableau-de-bord")
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"{base}/tableau-de-bord/{ami2_id}")
        page = user.get(f"{base}/tableau-de-bord/{ami2_id}").text
        if login == "mgp.agent":     # the commune has a convention for AMI 2 only
            assert f'href="{base}/tableau-de-bord/{ami1_id}"' in page
            assert "Autres programmes" in page
    aptic = browser_factory().login("aptic.agent").get("/mandataire/aptic/tableau-de-bord").text
    assert aptic.index("Pass Numérique MGP — AMI 2") < aptic.index("Pass Numérique MGP — AMI 1")


def test_structure_home_shows_the_role_actions_and_figures(app, browser_factory):
    """A prescripteur lands on its stock and this month's remises, with the
    "Remettre un carnet" action; an opérateur on "Scanner un pass"; the
    figures equal a recount."""
    import html

    from portal.extensions import db
    from portal.formatting import format_count
    from portal.models import Distribution, Tenant
    with app.app_context():
        ccas = db.session.execute(sa.select(Tenant).where(
            Tenant.slug == "neuilly-plaisance-ccas")).scalar_one()
        in_stock = db.session.execute(sa.select(
            sa.func.count(sa.distinct(Pass.carnet_id)), sa.func.count()).where(
            Pass.holder_id == ccas.id, Pass.state == S.REPARTI)).one()
        month_start = dt.datetime.now(PARIS).replace(day=1, hour=0, minute=0, second=0,
                                                     microsecond=0)
        handed = db.session.execute(sa.select(sa.func.count(),
                                              sa.func.coalesce(sa.func.sum(Distribution.pass_count), 0))
                                    .where(Distribution.structure_id == ccas.id,
                                           Distribution.created_at >= month_start)).one()
    assert in_stock[0] > 0         # the demo data split carnets to this CCAS
    page = html.unescape(browser_factory().login("prescripteur.neuilly-plaisance-ccas")
                         .get("/structure/neuilly-plaisance-ccas/").text)
    assert "Remettre un carnet" in page and "Scanner un pass" not in page
    assert f"Carnets en stock<strong>{format_count(in_stock[0])}</strong>" \
           f"{format_count(in_stock[1])} pass" in page
    assert f"Remises ce mois-ci<strong>{format_count(handed[0])}</strong>" \
           f"{format_count(int(handed[1]))} pass" in page
    page = browser_factory().login("operateur.neuilly-plaisance-centre-social").get(
        "/structure/neuilly-plaisance-centre-social/").text
    assert "Scanner un pass" in page and "Carnets en stock" not in page
    assert "/structure/neuilly-plaisance-centre-social/scan" in page


def test_aptic_panels_are_headed_under_their_programme(app, browser_factory):
    """On the #APTIC dashboard a programme is an h2, so its lazy panels are h3;
    the same panel opened as a page (no htmx) is an h2 under the page's h1."""
    from portal.extensions import db
    with app.app_context():
        programme_id = db.session.execute(sa.select(Programme.id).where(
            Programme.prefix == "MGP2")).scalar_one()
    aptic = browser_factory().login("aptic.agent")
    url = f"/mandataire/aptic/tableau-de-bord/{programme_id}/panneau/anomalies"
    fragment = aptic.get(url, headers={"HX-Request": "true"}).text
    assert "<h3>Anomalies" in fragment and "<h2>" not in fragment
    page = aptic.get(url).text
    assert "<h2>Anomalies" in page and "<h3>Anomalies" not in page
