"""The rollups kept by custody equal a recount of the pass and the ledger,
after random operations and after concurrent ones (PostgreSQL threads)."""
from __future__ import annotations

import random
import threading

import pytest
import sqlalchemy as sa

from helpers import issued_and_activated, new_programme, tenant
from portal.domain import custody, rollups
from portal.domain.errors import Conflict
from portal.domain.ledger import Actor
from portal.models import Pass
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature as N

SYS = Actor(None, None)


def _assert_exact(session, prog):
    assert rollups.positions(session, prog.id) == rollups.recount_positions(session, prog.id)
    assert rollups.flows(session, prog.id) == rollups.recount_flows(session, prog.id)


def random_operations(session, prog, rng: random.Random, steps: int = 40) -> None:
    """Random but legal moves over two communes and their structures."""
    communes = [tenant(session, "bondy"), tenant(session, "neuilly-plaisance")]
    structures = {c.id: [tenant(session, f"{c.slug}-ccas"), tenant(session, f"{c.slug}-centre-social")]
                  for c in communes}
    for _ in range(steps):
        commune = rng.choice(communes)
        structure = rng.choice(structures[commune.id])
        nature = rng.choice([N.LIVRAISON, N.REPARTITION, N.DISTRIBUTION, N.SCAN, N.ANNULATION_SCAN,
                             N.CONTRE_PAIEMENT, N.PAIEMENT, N.RESTITUTION, N.BLOCAGE, N.REPRISE])
        allowed, _to = custody.TRANSITIONS[nature]
        where = [Pass.programme_id == prog.id, Pass.state.in_(allowed)]
        if nature is not N.LIVRAISON:
            where.append(Pass.commune_id == commune.id)
        ids = session.execute(sa.select(Pass.id).where(*where).order_by(Pass.id)
                              .limit(rng.randint(1, 25))).scalars().all()
        if not ids:
            continue
        holder = {N.LIVRAISON: commune.id, N.REPARTITION: structure.id, N.REPRISE: commune.id,
                  N.RESTITUTION: prog.commanditaire_id}.get(nature, structure.id)
        custody.move(session, prog, nature=nature, criteria=[Pass.id.in_(ids)],
                     to_holder_id=holder, actor=SYS)
        session.commit()


@pytest.mark.parametrize("seed", [11, 12])
def test_rollups_equal_a_recount_after_random_operations(db_session, seed):
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 20)
    _assert_exact(db_session, prog)
    random_operations(db_session, prog, random.Random(seed))
    _assert_exact(db_session, prog)
    # A failed move leaves no trace in the rollups either.
    distributed = db_session.execute(sa.select(Pass.id).where(
        Pass.programme_id == prog.id, Pass.state == S.EMIS)).scalars().all()
    before = rollups.positions(db_session, prog.id)
    with pytest.raises(Conflict):
        custody.move(db_session, prog, nature=N.SCAN, criteria=[Pass.id.in_(
            distributed or [-1])], to_holder_id=None, actor=SYS)
    db_session.rollback()
    assert rollups.positions(db_session, prog.id) == before


def test_rebuild_repairs_the_rollups(db_session):
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 3)
    random_operations(db_session, prog, random.Random(5), steps=10)
    db_session.execute(sa.text("DELETE FROM position_counts"))
    rollups.rebuild(db_session, prog.id)
    db_session.commit()
    _assert_exact(db_session, prog)


@pytest.mark.postgresql_only
def test_concurrent_moves_keep_the_rollups_exact(app):
    from portal.extensions import db
    with app.app_context():
        prog = new_programme(db.session)
        issued_and_activated(db.session, prog, 30)
        db.session.commit()
        prog_id = prog.id
        db.session.remove()
    errors = []

    def worker(seed):
        from portal.models import Programme
        with app.app_context():
            session = db.session
            programme = session.get(Programme, prog_id)
            rng = random.Random(seed)
            for _ in range(15):
                try:
                    random_operations(session, programme, rng, steps=1)
                except Conflict:
                    session.rollback()
                except Exception as exc:      # noqa: BLE001 — reported below
                    errors.append(repr(exc))
                    session.rollback()
            session.remove() if hasattr(session, "remove") else None
            db.session.remove()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        from portal.models import Programme
        _assert_exact(db.session, db.session.get(Programme, prog_id))


def test_circulation_is_the_reddition_s():
    from portal.domain import reddition
    assert rollups.CIRCULATION == reddition.CIRCULATION


def test_fast_scan_paths_keep_the_rollups_exact(db_session):
    """custody.scan_pass / unscan_pass (the opérateurs' hot path) update the
    rollups like move() does."""
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 2)
    bondy, ccas, media = (tenant(db_session, s) for s in ("bondy", "bondy-ccas",
                                                           "bondy-mediatheque"))
    for nature, holder in ((N.LIVRAISON, bondy.id), (N.REPARTITION, ccas.id),
                           (N.DISTRIBUTION, ccas.id)):
        custody.move(db_session, prog, nature=nature, criteria=[], to_holder_id=holder, actor=SYS)
    passes = db_session.execute(sa.select(Pass).where(Pass.programme_id == prog.id)
                                .order_by(Pass.id).limit(3)).scalars().all()
    for p in passes:
        custody.scan_pass(db_session, prog, pass_id=p.id, serial=p.serial,
                          previous_holder_id=ccas.id, structure_id=media.id, actor=SYS,
                          record_consumption=lambda previous: 1)
    custody.unscan_pass(db_session, prog, pass_id=passes[0].id, serial=passes[0].serial,
                        structure_id=media.id, back_to_holder_id=ccas.id, actor=SYS, scan_id=1,
                        reason="erreur")
    db_session.commit()
    _assert_exact(db_session, prog)
    assert rollups.positions(db_session, prog.id)[(bondy.id, S.SCANNE, media.id)] == 2
