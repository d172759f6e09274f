"""The stock pages show the stock equation's terms and nothing else (issue 14 item 9).

Before: « Disponibles 155 000 » on a programme of which no pass exists (the
programme's setting, not pass), and « Tranches confirmées 156 230 » above
« Acquis 155 000 » after a restitution, figures that added up to nothing.
Now every figure is a term of « Émis = à activer + disponibles + … » (pass
per state, from the ledger) or of the commitments' « Stock prévu + restitués =
tranches confirmées + restant à engager », and each page's figures add up.
Runs on both databases (the terms are SQL sums over the rollups).
"""
from __future__ import annotations

import datetime as dt
import html
import re

from helpers import issued_and_activated, new_programme
from portal.domain import allocation, dashboards
from portal.domain.ledger import Actor
from portal.models import SanctionKind
from test_allocation import _ready_convention, _receive

D = dt.date
MGP = Actor(None, None)


def figures(page: str, list_id: str) -> list[tuple[str, int]]:
    """(label, number) of each tile of one figures list of a page."""
    block = re.search(rf'<ul class="[^"]*" id="{list_id}">(.*?)</ul>', page, re.S)
    assert block, f"no figures list {list_id!r} on the page"
    tiles = []
    for label, number in re.findall(r"<li>(.*?)<strong>([^<]*)</strong>", block.group(1), re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", label)).strip(" =+")
        tiles.append((text, int(re.sub(r"[^\d-]", "", number))))
    return tiles


def check_pass_equation(page: str, prefix: str = "ABC") -> dict[str, int]:
    tiles = figures(page, f"stock-pass-{prefix}")
    assert tiles[0][0] == "Émis"
    assert tiles[0][1] == sum(n for _label, n in tiles[1:]), tiles
    assert "Émis = à activer + disponibles" in page
    return {label.split(" (")[0].split(",")[0]: n for label, n in tiles}


def check_commitments(page: str, prefix: str = "ABC") -> dict[str, int]:
    tiles = dict(figures(page, f"stock-engagements-{prefix}"))
    planned, restituted = tiles["Stock prévu (art. 6)"], tiles["Restitués par les communes (art. 11)"]
    committed, left = tiles["Tranches confirmées"], tiles["Restant à engager"]
    assert planned + restituted == committed + left, tiles
    assert "Stock prévu + restitués par les communes = tranches confirmées + restant à engager" in page
    return tiles


def test_a_programme_without_pass_shows_none_available(app, browser_factory):
    from portal.extensions import db
    with app.app_context():
        prog = new_programme(db.session, "ABC", total_stock=155_000)
        db.session.commit()
        pid = prog.id
    mgp = browser_factory().login("mgp.admin")
    for url in (f"/metropole/mgp/allocation/{pid}", f"/metropole/mgp/tableau-de-bord/{pid}"):
        page = mgp.get(url)
        assert page.status_code == 200
        terms = check_pass_equation(page.text)
        assert terms["Émis"] == 0
        assert terms["Disponibles dans le stock de la Métropole"] == 0
        assert all(n == 0 for _label, n in figures(page.text, "stock-pass-ABC"))
        commitments = check_commitments(page.text)
        assert commitments["Stock prévu (art. 6)"] == 155_000
        assert commitments["Restant à engager"] == 155_000
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/tableau-de-bord")
    assert page.status_code == 200 and "Émis = à activer + disponibles" in page.text


def test_after_a_restitution_the_figures_still_add_up(app, browser_factory):
    """Stock 150, amorçages of 60: Bondy and Montreuil receive theirs, Bondy
    gives 40 back (art. 11), Pantin's amorçage is then confirmed: 180 pass
    confirmed in tranches for 150 planned — each page says why."""
    from portal.extensions import db
    with app.app_context():
        session = db.session
        prog = new_programme(session, "ABC", total_stock=150, amorcage_size=60)
        issued_and_activated(session, prog, 15)
        conventions = {}
        for slug in ("bondy", "montreuil", "pantin"):
            conventions[slug] = _ready_convention(session, prog, slug)
        for slug in ("bondy", "montreuil"):
            tranche = allocation.request_amorcage(session, conventions[slug], actor=MGP,
                                                  today=D(2021, 1, 4))
            allocation.confirm_amorcage(session, tranche, actor=MGP, today=D(2021, 1, 4))
            _receive(session, tranche, D(2021, 1, 10))
        allocation.order_sanction(session, conventions["bondy"], SanctionKind.RESTITUTION,
                                  reason="Retard significatif", quantity=40, actor=MGP,
                                  today=D(2021, 2, 1))
        tranche = allocation.request_amorcage(session, conventions["pantin"], actor=MGP,
                                              today=D(2021, 2, 2))
        allocation.confirm_amorcage(session, tranche, actor=MGP, today=D(2021, 2, 2))
        session.commit()
        pid = prog.id
        expected = dashboards.pass_stock(session, prog)
    assert expected.issued == 150 and expected.available == 70
    assert expected.count("communes") == 80
    mgp = browser_factory().login("mgp.admin")
    for url in (f"/metropole/mgp/allocation/{pid}", f"/metropole/mgp/tableau-de-bord/{pid}"):
        page = mgp.get(url).text
        terms = check_pass_equation(page)
        assert terms["Émis"] == 150
        assert terms["Disponibles dans le stock de la Métropole"] == 70
        assert terms["Confiés aux communes"] == 80
        assert check_commitments(page) == {
            "Stock prévu (art. 6)": 150, "Restitués par les communes (art. 11)": 40,
            "Tranches confirmées": 180, "Restant à engager": 10}
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/tableau-de-bord").text
    section = page[page.index("Programme ABC"):]
    assert check_pass_equation(section)["Émis"] == 150
