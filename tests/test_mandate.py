"""The #APTIC mandate: habilitations without régie, distributions, reddition des comptes."""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re

import pytest
import sqlalchemy as sa

from helpers import drop_ledger_protection, issued_and_activated, new_programme, tenant
from portal.domain import clock, custody, distribution, mandate as mandates, reddition
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.accounts import find_user
from portal.models import Base, Distribution, LedgerEntry, Mandate, Pass
from portal.models.issuance import PassState as S
from portal.formatting import PARIS
from portal.models.ledger import Nature

D = dt.date
SYS = Actor(None, None)


def _mandate(session, **overrides):
    values = dict(mandant=tenant(session, "mgp"), mandataire=tenant(session, "aptic"),
                  reference="MANDAT-TEST", accord_cadre_reference="AC-2019",
                  accord_cadre_ends_on=D(2022, 12, 31), starts_on=D(2022, 5, 1),
                  ends_on=D(2023, 12, 31))
    values.update(overrides)
    m = mandates.create_mandate(session, **values)
    mandates.sign_mandate(session, m, D(2022, 4, 20))
    return m


def _agent(session, slug="bondy-ccas"):
    return find_user(session, f"prescripteur.{slug}@demo.pass-numerique.fr"), tenant(session, slug)


def _stocked_programme(session, *, carnets=4, **settings):
    """A programme whose carnets sit in the stock of bondy-ccas (réparti)."""
    prog = new_programme(session, valid_until=D(2023, 12, 31), tolerance_until=D(2024, 1, 31),
                         target_publics=["seniors", "demandeurs_emploi"], **settings)
    issued_and_activated(session, prog, carnets)
    bondy, ccas = tenant(session, "bondy"), tenant(session, "bondy-ccas")
    for nature, holder in ((Nature.LIVRAISON, bondy.id), (Nature.REPARTITION, ccas.id)):
        custody.move(session, prog, nature=nature, criteria=[], to_holder_id=holder, actor=SYS)
    return prog


def _hand_out(session, prog, user, structure, *, carnet=1, count=None, token=None,
              day=D(2022, 6, 1)):
    return distribution.hand_out(
        session, programme=prog, structure=structure, user_id=user.id, carnet_number=carnet,
        pass_count=count, target_public="seniors", needs=["demarches"],
        answers={"tranche_age": "60_plus", "equipement": "aucun", "orientation": "spontane"},
        request_token=token or f"t-{carnet}-{random.random()}", today=day)


def test_mandate_end_is_at_most_fourteen_months_after_the_accord_cadre(db_session):
    assert mandates.latest_end(D(2022, 12, 31)) == D(2024, 2, 29)
    _mandate(db_session, ends_on=D(2024, 2, 29))
    with pytest.raises(InvalidInput, match="14 mois"):
        _mandate(db_session, reference="TROP-LONG", ends_on=D(2024, 3, 1))


def test_habilitation_needs_a_mandate_in_force(db_session):
    user, ccas = _agent(db_session)
    draft = mandates.create_mandate(
        db_session, mandant=tenant(db_session, "mgp"), mandataire=tenant(db_session, "aptic"),
        reference="BROUILLON", accord_cadre_reference="AC", accord_cadre_ends_on=D(2022, 12, 31),
        starts_on=D(2022, 5, 1), ends_on=D(2023, 1, 31))
    with pytest.raises(Conflict, match="pas signé"):
        mandates.grant_habilitation(db_session, draft, user=user, structure=ccas,
                                    starts_on=D(2022, 6, 1), ends_on=D(2022, 12, 31), actor=SYS,
                                    today=D(2022, 6, 1))


def test_no_distribution_without_a_valid_habilitation(db_session):
    prog = _stocked_programme(db_session, carnets=6)
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    other_user, other = _agent(db_session, "bondy-centre-social")

    with pytest.raises(NotAllowed, match="aucune habilitation"):
        _hand_out(db_session, prog, user, ccas)
    h = mandates.grant_habilitation(db_session, m, user=user, structure=ccas,
                                    starts_on=D(2022, 6, 1), ends_on=D(2022, 8, 31), actor=SYS,
                                    today=D(2022, 5, 2))
    # Not yet valid, expired, other structure.
    with pytest.raises(NotAllowed, match="à partir du 01/06/2022"):
        _hand_out(db_session, prog, user, ccas, day=D(2022, 5, 31))
    with pytest.raises(NotAllowed, match="expirée le 31/08/2022"):
        _hand_out(db_session, prog, user, ccas, day=D(2022, 9, 1))
    mandates.grant_habilitation(db_session, m, user=other_user, structure=other,
                                starts_on=D(2022, 6, 1), ends_on=D(2022, 8, 31), actor=SYS,
                                today=D(2022, 5, 2))
    with pytest.raises(NotAllowed, match="autre structure"):
        _hand_out(db_session, prog, other_user, ccas)
    done = _hand_out(db_session, prog, user, ccas, carnet=1)
    assert (done.habilitation_id, done.mandate_id, done.pass_count) == (h.id, m.id, 10)
    assert re.fullmatch(r"B-[0-9A-Z]{4}-[0-9A-Z]{4}", done.beneficiary.code)
    entry = db_session.execute(sa.select(LedgerEntry).where(
        LedgerEntry.programme_id == prog.id, LedgerEntry.nature == Nature.DISTRIBUTION)
    ).scalars().one()
    assert entry.actor_user_id == user.id and entry.ref_id == done.id and entry.count == 10
    # Revoked.
    mandates.revoke_habilitation(db_session, h, on=D(2022, 7, 1), reason="Départ", actor=SYS,
                                 now=dt.datetime(2022, 6, 20, 10, tzinfo=PARIS))
    _hand_out(db_session, prog, user, ccas, carnet=2, day=D(2022, 6, 30))
    with pytest.raises(NotAllowed, match="révoquée"):
        _hand_out(db_session, prog, user, ccas, carnet=3, day=D(2022, 7, 1))
    # Mandate ended: its habilitations stop working.
    mandates.terminate_mandate(db_session, m, D(2022, 6, 15), "Liquidation")
    with pytest.raises(NotAllowed, match="pris fin"):
        _hand_out(db_session, prog, other_user, other, carnet=3, day=D(2022, 6, 20))


def test_mandate_not_yet_in_force(db_session):
    prog = _stocked_programme(db_session)
    m = _mandate(db_session, starts_on=D(2022, 9, 1))
    user, ccas = _agent(db_session)
    h = mandates.grant_habilitation(db_session, m, user=user, structure=ccas,
                                    starts_on=D(2022, 9, 1), ends_on=D(2022, 12, 31), actor=SYS,
                                    today=D(2022, 6, 1))
    # Force an earlier start on the habilitation to reach the mandate rule itself.
    h.starts_on = D(2022, 6, 1)
    with pytest.raises(NotAllowed, match="n'entre en vigueur que le 01/09/2022"):
        _hand_out(db_session, prog, user, ccas, day=D(2022, 6, 1))


def test_overlapping_habilitations_are_refused(db_session):
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 6, 1),
                                ends_on=D(2022, 8, 31), actor=SYS, today=D(2022, 6, 1))
    with pytest.raises(Conflict, match="chevaucher"):
        mandates.grant_habilitation(db_session, m, user=user, structure=ccas,
                                    starts_on=D(2022, 8, 1), ends_on=D(2022, 9, 30), actor=SYS,
                                    today=D(2022, 6, 1))
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 9, 1),
                                ends_on=D(2022, 9, 30), actor=SYS, today=D(2022, 6, 1))
    with pytest.raises(InvalidInput, match="n'est pas prescripteur"):
        mandates.grant_habilitation(db_session, m, user=user, structure=tenant(db_session, "bondy-centre-social"),
                                    starts_on=D(2022, 6, 1), ends_on=D(2022, 6, 30), actor=SYS,
                                    today=D(2022, 6, 1))


def test_partial_carnet_setting_and_stock_limits(db_session):
    prog = _stocked_programme(db_session, carnets=2)
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 6, 1),
                                ends_on=D(2022, 12, 31), actor=SYS, today=D(2022, 6, 1))
    with pytest.raises(InvalidInput, match="carnets complets"):
        _hand_out(db_session, prog, user, ccas, count=3)
    prog.allow_partial_carnet = True
    assert _hand_out(db_session, prog, user, ccas, count=3).pass_count == 3
    assert _hand_out(db_session, prog, user, ccas, count=7).pass_count == 7
    with pytest.raises(Conflict, match="pas dans le stock"):
        _hand_out(db_session, prog, user, ccas, carnet=1, count=1)
    with pytest.raises(Conflict, match="pas dans le stock"):
        _hand_out(db_session, prog, user, ccas, carnet=99)
    # Another structure's stock.
    other_user, media = _agent(db_session, "bondy-centre-social")
    mandates.grant_habilitation(db_session, m, user=other_user, structure=media,
                                starts_on=D(2022, 6, 1), ends_on=D(2022, 12, 31), actor=SYS,
                                today=D(2022, 6, 1))
    with pytest.raises(Conflict, match="pas dans le stock"):
        _hand_out(db_session, prog, other_user, media, carnet=2)


def test_double_submit_makes_one_distribution(db_session):
    prog = _stocked_programme(db_session)
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 6, 1),
                                ends_on=D(2022, 12, 31), actor=SYS, today=D(2022, 6, 1))
    first = _hand_out(db_session, prog, user, ccas, token="double-clic")
    again = _hand_out(db_session, prog, user, ccas, carnet=2, token="double-clic")
    assert first.id == again.id
    assert db_session.execute(sa.select(sa.func.count()).select_from(Distribution).where(
        Distribution.programme_id == prog.id)).scalar() == 1


def test_eligibility_and_questionnaire_are_checked(db_session):
    prog = _stocked_programme(db_session)
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 6, 1),
                                ends_on=D(2022, 12, 31), actor=SYS, today=D(2022, 6, 1))
    base = dict(programme=prog, structure=ccas, user_id=user.id, carnet_number=1, pass_count=None,
                target_public="seniors", needs=["demarches"],
                answers={"tranche_age": "60_plus", "equipement": "aucun", "orientation": "spontane"},
                today=D(2022, 6, 1))
    with pytest.raises(InvalidInput, match="public cible"):
        distribution.hand_out(db_session, **{**base, "target_public": "jeunes", "request_token": "a"})
    with pytest.raises(InvalidInput, match="besoin"):
        distribution.hand_out(db_session, **{**base, "needs": [], "request_token": "b"})
    with pytest.raises(InvalidInput, match="Tranche d'âge"):
        distribution.hand_out(db_session, **{**base, "answers": {"tranche_age": "Jean Dupont"},
                                             "request_token": "c"})


def test_no_personal_data_column_in_beneficiary_and_questionnaire_tables():
    forbidden = re.compile(r"nom|name|prenom|birth|naissance|phone|telephone|email|courriel|"
                           r"adresse|address|comment|texte|libre", re.I)
    for table in ("beneficiaries", "questionnaire_answers", "distributions"):
        columns = [c.name for c in Base.metadata.tables[table].columns]
        assert [c for c in columns if forbidden.search(c)] == [], table
    # Free-text columns would be unbounded Text; answers are short category keys.
    answers = Base.metadata.tables["questionnaire_answers"].columns
    assert answers["answer"].type.length <= 40


def test_distinct_persons_prescripteur_cannot_scan(db_session):
    """Art. 8: the ledger records who handed out a pass; scanning (the
    opérateurs issue) reads it from there."""
    prog = _stocked_programme(db_session)
    m = _mandate(db_session)
    user, ccas = _agent(db_session, "bondy-centre-social")
    mandates.grant_habilitation(db_session, m, user=user, structure=ccas, starts_on=D(2022, 6, 1),
                                ends_on=D(2022, 12, 31), actor=SYS, today=D(2022, 6, 1))
    custody.move(db_session, prog, nature=Nature.REPRISE, criteria=[],
                 to_holder_id=tenant(db_session, "bondy").id, actor=SYS)
    custody.move(db_session, prog, nature=Nature.REPARTITION, criteria=[],
                 to_holder_id=ccas.id, actor=SYS)
    done = _hand_out(db_session, prog, user, ccas)
    handed_by = distribution.handed_out_by(db_session, done.pass_first_id)
    assert handed_by == user.id


# ------------------------------------------------------------------ reddition

def _scenario(session, seed: int):
    """Random distributions, scans and payments on a programme with a mandate."""
    rng = random.Random(seed)
    prog = _stocked_programme(session, carnets=12)
    m = _mandate(session)
    user, ccas = _agent(session)
    mandates.grant_habilitation(session, m, user=user, structure=ccas, starts_on=D(2022, 5, 1),
                                ends_on=D(2023, 12, 31), actor=SYS, today=D(2022, 5, 1))
    handed = rng.randint(3, 10)
    for carnet in range(1, handed + 1):
        _hand_out(session, prog, user, ccas, carnet=carnet)
    media = tenant(session, "bondy-mediatheque")
    distributed = session.execute(sa.select(Pass.id).where(
        Pass.programme_id == prog.id, Pass.state == S.DISTRIBUE).order_by(Pass.id)).scalars().all()
    scanned = rng.sample(distributed, rng.randint(1, len(distributed)))
    custody.move(session, prog, nature=Nature.SCAN, criteria=[Pass.id.in_(scanned)],
                 to_holder_id=media.id, actor=SYS)
    paid = scanned[: len(scanned) // 2]
    if paid:
        for nature in (Nature.CONTRE_PAIEMENT, Nature.PAIEMENT):
            custody.move(session, prog, nature=nature, criteria=[Pass.id.in_(paid)],
                         to_holder_id=media.id, actor=SYS, ref_type="test", ref_id=1)
    session.commit()
    return prog, m, handed, len(scanned), len(paid)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reddition_totals_equal_the_ledger(db_session, seed):
    today = clock.today()   # Paris, like the ledger days
    demo_mandate = db_session.execute(sa.select(Mandate)).scalar_one()
    before = reddition.build_statement(db_session, demo_mandate, D(2000, 1, 1), today, today)
    prog, m, handed, scanned, paid = _scenario(db_session, seed)
    statement = reddition.build_statement(db_session, m, D(2000, 1, 1), today, today)
    assert statement.mismatches == []

    def added(nature):
        now = statement.total.natures.get(nature, reddition.Amount())
        then = before.total.natures.get(nature, reddition.Amount())
        return now.count - then.count, now.cents - then.cents

    assert added(Nature.DISTRIBUTION) == (handed * 10, handed * 10 * 1000)
    assert added(Nature.SCAN) == (scanned, scanned * 1000)
    assert added(Nature.PAIEMENT) == (paid, paid * 1000)
    assert added(Nature.LIVRAISON) == (120, 120_000)
    bondy = next(r for r in statement.rows if r.name == "Bondy")
    # Closing balance: delivered and not yet paid.
    assert (bondy.closing.count, bondy.closing.cents) == (120 - paid, (120 - paid) * 1000)
    # Every nature's total is the sum of its commune rows, without netting.
    for nature, amount in statement.total.natures.items():
        assert amount.count == sum(r.natures[nature].count for r in statement.rows
                                   if nature in r.natures)
    assert len(statement.distributions) == handed      # those made under this mandate
    assert all(d["habilitation"] for d in statement.distributions)
    assert statement.ledger_ok


def test_an_unbalanced_ledger_shows_the_mismatch(db_session):
    prog, m, *_ = _scenario(db_session, 7)
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("UPDATE ledger_entries SET amount_cents = amount_cents + 500 "
                               "WHERE nature = 'distribution'"))
    db_session.commit()
    today = clock.today()
    statement = reddition.build_statement(db_session, m, D(2000, 1, 1), today, today)
    assert any("montant" in problem for problem in statement.mismatches)
    assert not statement.ledger_ok


def test_a_pass_moved_outside_the_ledger_shows_the_mismatch(db_session):
    prog, m, *_ = _scenario(db_session, 8)
    db_session.execute(sa.text("UPDATE passes SET state = 'annule' WHERE id = "
                               "(SELECT min(id) FROM passes WHERE state = 'reparti')"))
    db_session.commit()
    today = clock.today()
    statement = reddition.build_statement(db_session, m, D(2000, 1, 1), today, today)
    assert any("réellement en circulation" in p for p in statement.mismatches)


def test_reddition_exports_and_closing(app, browser_factory):
    aptic = browser_factory().login("aptic.admin")
    from portal.extensions import db
    with app.app_context():
        mandate_id = db.session.execute(sa.select(Mandate.id)).scalar_one()
    base = f"/mandataire/aptic/mandats/{mandate_id}/reddition"
    page = aptic.get(base + "?debut=2000-01-01&fin=2100-01-01")
    assert page.status_code == 200 and "aucun écart" in page.text and "Neuilly-Plaisance" in page.text
    csv_response = aptic.get(base + ".csv?debut=2000-01-01&fin=2100-01-01")
    text = csv_response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    total = next(r for r in rows if r and r[0] == "Total")
    header = rows[1]
    handed_col = header.index("distribution (pass)")
    assert int(total[handed_col]) == 60        # six demo carnets handed out
    xlsx = aptic.get(base + ".xlsx?debut=2000-01-01&fin=2100-01-01")
    from openpyxl import load_workbook
    workbook = load_workbook(io.BytesIO(xlsx.data))
    assert workbook.sheetnames == ["Reddition", "Distributions", "Révocations",
                                   "Contre-paiements", "Fonds"]
    assert workbook["Distributions"].max_row == 7
    pdf = aptic.get(base + ".pdf?debut=2000-01-01&fin=2100-01-01")
    assert pdf.data.startswith(b"%PDF")
    assert aptic.get(base + "?debut=hier").status_code == 422
    # Closing a finished period twice keeps the first closure.
    r1 = aptic.post(base + "/cloture", {"debut": "2000-01-01", "fin": "2001-12-31"})
    r2 = aptic.post(base + "/cloture", {"debut": "2000-01-01", "fin": "2001-12-31"})
    assert r1.status_code == r2.status_code == 303
    with app.app_context():
        from portal.models import RedditionClosure
        closures = db.session.execute(sa.select(RedditionClosure)).scalars().all()
        assert len(closures) == 1 and len(closures[0].statement_sha256) == 64
        assert closures[0].ledger_heads
    # An unfinished period cannot be closed.
    assert aptic.post(base + "/cloture", {"debut": "2000-01-01", "fin": "2100-01-01"}).status_code == 422
    # MGP reads it; a commune cannot.
    mgp = browser_factory().login("mgp.agent")
    assert mgp.get(f"/metropole/mgp/mandats/{mandate_id}/reddition").status_code == 200
    ref = browser_factory().login("referent.bondy")
    assert ref.get(f"/metropole/mgp/mandats/{mandate_id}/reddition").status_code == 404


def test_desk_page_and_habilitation_request_flow(app, browser_factory):
    desk = browser_factory().login("prescripteur.neuilly-plaisance-ccas")
    page = desk.get("/structure/neuilly-plaisance-ccas/remise").text
    assert "Remettre le carnet" in page
    token = re.search(r'name="request_token" value="([^"]+)"', page).group(1)
    carnet = re.search(r'name="carnet_number" type="number" min="1" value="(\d+)"', page).group(1)
    form = {"request_token": token, "programme_id": "2", "carnet_number": carnet,
            "target_public": "seniors", "needs": "courriel", "tranche_age": "26_59",
            "equipement": "ordinateur", "orientation": "facilitateur"}
    first = desk.post("/structure/neuilly-plaisance-ccas/remise", form)
    second = desk.post("/structure/neuilly-plaisance-ccas/remise", form)   # double click
    assert first.status_code == second.status_code == 303
    with app.app_context():
        from portal.extensions import db
        assert db.session.execute(sa.select(sa.func.count()).select_from(Distribution).where(
            Distribution.request_token == token)).scalar() == 1
    bad = desk.post("/structure/neuilly-plaisance-ccas/remise", dict(form, request_token="x2",
                                                                     carnet_number="abc"))
    assert bad.status_code == 422
    # A prescripteur without habilitation sees why.
    other = browser_factory().login("prescripteur.bondy-ccas")
    assert "aucune habilitation" in other.get("/structure/bondy-ccas/remise").text
    # The référent asks, #APTIC grants, the agent can then hand out.
    ref = browser_factory().login("referent.bondy")
    page = ref.get("/commune/bondy/habilitations").text
    agent = re.search(r'<option value="(\d+:\d+)">[^<]*CCAS de Bondy', page).group(1)
    assert ref.post("/commune/bondy/habilitations/demandes",
                    {"agent": agent, "starts_on": clock.today().isoformat(),
                     "ends_on": (clock.today() + dt.timedelta(days=300)).isoformat()}).status_code == 303
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/habilitations/demandes").text
    request_id = max(re.findall(r'/habilitations/demandes/(\d+)"', page), key=int)
    mandate_id = re.search(r'name="mandate_id"><option value="(\d+)"', page).group(1)
    assert aptic.post(f"/mandataire/aptic/habilitations/demandes/{request_id}",
                      {"decision": "refuser", "mandate_id": mandate_id, "reason": ""}).status_code == 422
    assert aptic.post(f"/mandataire/aptic/habilitations/demandes/{request_id}",
                      {"decision": "accorder", "mandate_id": mandate_id}).status_code == 303
    assert "aucune habilitation" not in other.get("/structure/bondy-ccas/remise").text


# --- issue 14, items 2 and 3: revocations are never backdated and take effect at a moment

def test_a_backdated_revocation_is_refused_and_revocations_are_supporting_records(db_session):
    prog = _stocked_programme(db_session)
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    h = mandates.grant_habilitation(db_session, m, user=user, structure=ccas,
                                    starts_on=D(2022, 6, 1), ends_on=D(2022, 8, 31), actor=SYS,
                                    today=D(2022, 5, 2))
    _hand_out(db_session, prog, user, ccas, carnet=1, day=D(2022, 6, 10))
    now = dt.datetime(2022, 6, 20, 10, 0, tzinfo=PARIS)
    with pytest.raises(InvalidInput, match="antidatée"):
        mandates.revoke_habilitation(db_session, h, on=D(2022, 6, 5), reason="Erreur",
                                     actor=SYS, now=now)
    assert h.revoked_at is None and h.revoked_on is None
    mandates.revoke_habilitation(db_session, h, on=D(2022, 6, 20), reason="Départ", actor=SYS,
                                 now=now)
    assert h.revoked_at == now and h.revoked_on == D(2022, 6, 20)
    db_session.commit()
    statement = reddition.build_statement(db_session, m, D(2022, 6, 1), D(2022, 6, 30),
                                          D(2022, 7, 1), verify_chain=False)
    assert statement.revocations == [{
        "habilitation": h.id, "prescripteur": user.full_name, "structure": ccas.name,
        "periode": "01/06/2022–31/08/2022", "date_indiquee": "20/06/2022",
        "effet": "20/06/2022 10:00", "motif": "Départ"}]
    assert "Révocations" in reddition.to_csv(statement) and "20/06/2022 10:00" in \
        reddition.to_csv(statement)
    assert '"revocations"' in statement.to_json()


def test_a_revocation_takes_effect_at_its_moment_not_for_the_whole_day(db_session):
    m = _mandate(db_session)
    user, ccas = _agent(db_session)
    h = mandates.grant_habilitation(db_session, m, user=user, structure=ccas,
                                    starts_on=D(2022, 6, 1), ends_on=D(2022, 8, 31), actor=SYS,
                                    today=D(2022, 5, 2))
    ten = dt.datetime(2022, 6, 20, 10, 0, tzinfo=PARIS)
    mandates.revoke_habilitation(db_session, h, on=D(2022, 6, 20), reason="Départ", actor=SYS,
                                 now=ten)
    day = D(2022, 6, 20)
    assert mandates.habilitation_problem(h, day, now=ten - dt.timedelta(minutes=1)) is None
    problem = mandates.habilitation_problem(h, day, now=ten + dt.timedelta(minutes=1))
    assert problem == "habilitation révoquée le 20/06/2022 à 10:00 (Départ)"
    # A revocation dated later takes effect at 00:00, Paris time, that day.
    user2, ccas2 = _agent(db_session, "montreuil-ccas")
    later = mandates.grant_habilitation(db_session, m, user=user2, structure=ccas2,
                                        starts_on=D(2022, 6, 1), ends_on=D(2022, 8, 31),
                                        actor=SYS, today=D(2022, 5, 2))
    mandates.revoke_habilitation(db_session, later, on=D(2022, 7, 1), reason="Fin", actor=SYS,
                                 now=ten)
    assert later.revoked_at == dt.datetime(2022, 7, 1, tzinfo=PARIS)
    assert mandates.habilitation_problem(later, D(2022, 6, 30)) is None
    assert "révoquée le 01/07/2022 à 00:00" in mandates.habilitation_problem(later, D(2022, 7, 1))
