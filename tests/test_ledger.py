"""The custody ledger: append-only in the database, tamper-evident by HMAC chain."""
from __future__ import annotations


import pytest
import sqlalchemy as sa

from helpers import drop_ledger_protection, issued_and_activated, new_programme, tenant
from portal.domain import custody, keys, ledger
from portal.domain.ledger import Actor
from portal.models import LedgerEntry, LedgerHead, Pass
from portal.models.issuance import PassState
from portal.models.ledger import Nature


@pytest.fixture
def chain(db_session):
    """A programme with 6 ledger entries: emission, activation, 4 deliveries."""
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 8)
    communes = ["bondy", "montreuil", "pantin", "sevran"]
    carnet_ids = db_session.execute(sa.select(Pass.carnet_id).where(Pass.programme_id == prog.id)
                                    .distinct().order_by(Pass.carnet_id)).scalars().all()
    for n, slug in enumerate(communes):
        custody.move(db_session, prog, nature=Nature.LIVRAISON,
                     criteria=[Pass.carnet_id.in_(carnet_ids[2 * n:2 * n + 2])],
                     to_holder_id=tenant(db_session, slug).id, actor=Actor(None, None))
    db_session.commit()
    assert ledger.verify(db_session, prog.id).ok
    return prog


def _entries(session, prog):
    return session.execute(sa.select(LedgerEntry).where(LedgerEntry.programme_id == prog.id)
                           .order_by(LedgerEntry.seq)).scalars().all()


def test_entries_are_chained_and_balances_come_from_the_ledger(db_session, chain):
    entries = _entries(db_session, chain)
    assert [e.nature for e in entries] == [Nature.EMISSION, Nature.ACTIVATION] + [Nature.LIVRAISON] * 4
    assert [e.seq for e in entries] == list(range(1, 7))
    assert all(b.prev_mac == a.mac for a, b in zip(entries, entries[1:]))
    balances = ledger.balances(db_session, chain.id)
    assert balances[(PassState.LIVRE, tenant(db_session, "bondy").id)] == 20
    assert sum(balances.values()) == 80
    assert balances == {k: v for k, v in custody.state_counts(db_session, chain.id).items()}
    # Balances at a past date: before the deliveries, everything was in the stock.
    at = entries[1].created_at
    assert ledger.balances(db_session, chain.id, at) == {
        (PassState.ACTIVE, chain.commanditaire_id): 80}


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET count = 1",
    "DELETE FROM ledger_entries",
    "UPDATE ledger_anchors SET head_seq = 0",
    "DELETE FROM ledger_anchors",
])
def test_database_refuses_update_and_delete(db_session, chain, statement):
    ledger.anchor(db_session, chain.id, "2021-03")
    db_session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db_session.execute(sa.text(statement))
        db_session.flush()
    db_session.rollback()
    assert len(_entries(db_session, chain)) == 6


def _tamper(session, sql: str, **params):
    drop_ledger_protection(session)
    session.execute(sa.text(sql), params)
    session.commit()


def _first_problem(session, prog) -> str:
    report = ledger.verify(session, prog.id)
    assert not report.ok
    return report.first_problem


def test_edited_entry_is_detected_at_that_entry(db_session, chain):
    _tamper(db_session, "UPDATE ledger_entries SET count = count + 1 WHERE programme_id = :p AND seq = 4",
            p=chain.id)
    assert "écriture n° 4" in _first_problem(db_session, chain)
    assert "contenu modifié" in _first_problem(db_session, chain)


def test_deleted_entry_is_detected(db_session, chain):
    _tamper(db_session, "DELETE FROM ledger_entries WHERE programme_id = :p AND seq = 3", p=chain.id)
    assert "attendu n° 3" in _first_problem(db_session, chain)


def test_inserted_entry_is_detected(db_session, chain):
    e = _entries(db_session, chain)[2]
    drop_ledger_protection(db_session)
    # Make room after entry 3 and insert a forged entry that copies entry 3's fields.
    db_session.execute(sa.text("UPDATE ledger_entries SET seq = seq + 100 WHERE programme_id = :p AND seq > 3"),
                       {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_entries SET seq = seq - 99 WHERE programme_id = :p AND seq > 100"),
                       {"p": chain.id})
    db_session.execute(sa.insert(LedgerEntry).values(
        programme_id=chain.id, seq=4, created_at=e.created_at, nature=e.nature,
        to_state=e.to_state, to_holder_id=e.to_holder_id, from_state=e.from_state,
        from_holder_id=e.from_holder_id, pass_first_id=e.pass_first_id,
        pass_last_id=e.pass_last_id, serial_first=e.serial_first, serial_last=e.serial_last,
        count=e.count, amount_cents=e.amount_cents, prev_mac=e.mac, mac="0" * 64))
    db_session.commit()
    assert "écriture n° 4" in _first_problem(db_session, chain)


def test_swapped_entries_are_detected(db_session, chain):
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("UPDATE ledger_entries SET seq = 100 WHERE programme_id = :p AND seq = 4"), {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_entries SET seq = 4 WHERE programme_id = :p AND seq = 5"), {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_entries SET seq = 5 WHERE programme_id = :p AND seq = 100"), {"p": chain.id})
    db_session.commit()
    assert "écriture n° 4" in _first_problem(db_session, chain)
    assert "chaînage rompu" in _first_problem(db_session, chain)


def test_truncated_tail_is_detected_by_the_anchor(db_session, chain):
    ledger.anchor(db_session, chain.id, "2021-03")
    db_session.commit()
    drop_ledger_protection(db_session)
    # The attacker deletes the last two entries and rolls the head back too.
    kept = _entries(db_session, chain)[3]
    db_session.execute(sa.text("DELETE FROM ledger_entries WHERE programme_id = :p AND seq > 4"),
                       {"p": chain.id})
    db_session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == chain.id)
                       .values(seq=4, mac=kept.mac))
    db_session.commit()
    problem = _first_problem(db_session, chain)
    assert "clôture 2021-03" in problem and "fin du journal supprimée" in problem


def test_truncated_tail_is_detected_by_the_head_without_anchor(db_session, chain):
    _tamper(db_session, "DELETE FROM ledger_entries WHERE programme_id = :p AND seq = 6", p=chain.id)
    assert "fin du journal supprimée" in _first_problem(db_session, chain)


def test_rewrite_without_the_key_is_detected(db_session, chain):
    """An attacker recomputes the whole chain with a key of their own."""
    real = keys.ledger_key()
    fake = b"attacker-key-without-the-real-one"
    drop_ledger_protection(db_session)
    prev = ledger.genesis_mac(fake, chain.id)
    for e in _entries(db_session, chain):
        mac = ledger._mac(fake, prev, tuple(getattr(e, f) for f in ledger._FIELDS))
        db_session.execute(sa.update(LedgerEntry).where(LedgerEntry.id == e.id)
                           .values(prev_mac=prev, mac=mac))
        prev = mac
    db_session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == chain.id)
                       .values(mac=prev))
    db_session.commit()
    assert keys.ledger_key() == real
    assert "écriture n° 1" in _first_problem(db_session, chain)


def test_ledger_verify_command_exit_codes(app, chain, db_session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "Journal intègre" in result.output
    _tamper(db_session, "UPDATE ledger_entries SET reason = 'x' WHERE programme_id = :p AND seq = 2",
            p=chain.id)
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "écriture n° 2" in result.output


def test_anchor_is_idempotent_per_period(db_session, chain):
    first = ledger.anchor(db_session, chain.id, "2021-04")
    again = ledger.anchor(db_session, chain.id, "2021-04")
    assert first.id == again.id and first.head_seq == 6


def test_direct_state_writes_are_refused(db_session, chain):
    p = db_session.execute(sa.select(Pass).limit(1)).scalar_one()
    with pytest.raises(RuntimeError, match="custody"):
        p.state = PassState.DISTRIBUE


def test_no_other_module_writes_pass_state():
    """Only portal/domain/custody.py may UPDATE or INSERT pass rows."""
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parent.parent / "portal"
    offenders = []
    pattern = re.compile(r"\b(update|insert)\(\s*Pass\b|(UPDATE|INSERT\s+INTO)\s+passes\b",
                         re.IGNORECASE)
    for path in root.rglob("*.py"):
        if path.name == "custody.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []
    # The pattern does catch what it is meant to catch.
    assert pattern.search("session.execute(sa.update(Pass).values(state='scanne'))".replace("sa.", ""))
