"""The custody ledger: append-only in the database, tamper-evident by HMAC
chain — sealed off the request path (issue 18): every tampering case is
shown on sealed entries (their seals) and on entries still waiting for
their seal."""
from __future__ import annotations


import pytest
import sqlalchemy as sa

from helpers import drop_ledger_protection, issued_and_activated, new_programme, tenant
from portal.domain import custody, keys, ledger
from portal.domain.ledger import Actor
from portal.models import LedgerEntry, LedgerHead, LedgerSeal, LedgerUnsealed, Pass
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
    report = ledger.verify(db_session, prog.id)
    assert report.ok and report.entries == 0 and report.pending == 6
    assert ledger.seal(db_session, prog.id).sealed == 6
    report = ledger.verify(db_session, prog.id)
    assert report.ok and report.entries == 6 and report.pending == 0
    return prog


@pytest.fixture
def unsealed(db_session):
    """A programme whose 6 entries wait for the sealer (sealed: emission only)."""
    prog = new_programme(db_session, prefix="SEL")
    issued_and_activated(db_session, prog, 8)
    db_session.commit()
    ledger.seal(db_session, prog.id)
    carnet_ids = db_session.execute(sa.select(Pass.carnet_id).where(Pass.programme_id == prog.id)
                                    .distinct().order_by(Pass.carnet_id)).scalars().all()
    for n, slug in enumerate(["bondy", "montreuil", "pantin", "sevran"]):
        custody.move(db_session, prog, nature=Nature.LIVRAISON,
                     criteria=[Pass.carnet_id.in_(carnet_ids[2 * n:2 * n + 2])],
                     to_holder_id=tenant(db_session, slug).id, actor=Actor(None, None))
    db_session.commit()
    report = ledger.verify(db_session, prog.id)
    assert report.ok and report.entries == 2 and report.pending == 4
    return prog


def _entries(session, prog):
    """(entry, seal) of a programme in chain order (seal-less entries last)."""
    return session.execute(
        sa.select(LedgerEntry, LedgerSeal).outerjoin(LedgerSeal, LedgerSeal.entry_id == LedgerEntry.id)
        .where(LedgerEntry.programme_id == prog.id)
        .order_by(LedgerSeal.seq.is_(None), LedgerSeal.seq, LedgerEntry.id)).all()


def test_entries_are_chained_and_balances_come_from_the_ledger(db_session, chain):
    rows = _entries(db_session, chain)
    entries = [e for e, _ in rows]
    seals = [s for _, s in rows]
    assert [e.nature for e in entries] == [Nature.EMISSION, Nature.ACTIVATION] + [Nature.LIVRAISON] * 4
    assert [s.seq for s in seals] == list(range(1, 7))
    assert [e.id for e in entries] == sorted(e.id for e in entries)   # sealed in entry order
    assert all(b.prev_mac == a.mac for a, b in zip(seals, seals[1:]))
    assert not ledger.has_unsealed(db_session, chain.id)
    assert db_session.get(LedgerHead, chain.id).seq == 6
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
    "UPDATE ledger_seals SET mac = prev_mac",
    "DELETE FROM ledger_seals",
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


def _without_foreign_keys(session, *statements):
    """An attacker with DDL rights also ignores the foreign keys: PostgreSQL
    (replica role: no FK nor user triggers); SQLite (a plain connection,
    where foreign keys are off by default)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for sql, params in statements:
            session.execute(sa.text(sql), params)
        session.commit()
        return
    import sqlite3
    session.commit()
    drop_ledger_protection(session)
    session.commit()
    raw = sqlite3.connect(session.get_bind().url.database)
    with raw:
        for sql, params in statements:
            raw.execute(sql, params)
    raw.close()


def _entry_id(session, prog, seq: int) -> int:
    return session.execute(sa.select(LedgerSeal.entry_id).where(
        LedgerSeal.programme_id == prog.id, LedgerSeal.seq == seq)).scalar_one()


# ------------------------------------------------------------ sealed entries

def test_edited_entry_is_detected_at_that_entry(db_session, chain):
    _tamper(db_session, "UPDATE ledger_entries SET count = count + 1 WHERE id = :e",
            e=_entry_id(db_session, chain, 4))
    assert "écriture n° 4" in _first_problem(db_session, chain)
    assert "contenu modifié" in _first_problem(db_session, chain)


def test_verify_stops_reading_at_the_first_problem_batch_after_batch(db_session, chain):
    """One entry per batch: the problem is found while the reader (a thread
    on PostgreSQL) still has batches to give; it is stopped, the cursor
    closed, and the session's connection serves the next verify."""
    import threading
    _tamper(db_session, "UPDATE ledger_entries SET count = count + 1 WHERE id = :e",
            e=_entry_id(db_session, chain, 2))
    for _ in range(2):
        report = ledger.verify(db_session, chain.id, batch=1)
        assert not report.ok and "écriture n° 2" in report.first_problem
        assert not [t for t in threading.enumerate() if t.name == "ledger-verify-read"]
    intact = ledger.verify(db_session, batch=1)           # every programme, read to the end
    assert [p for p in intact.problems if f"programme {chain.id}," not in p] == []


def test_deleted_entry_is_detected(db_session, chain):
    # Its seal deleted with it: the sequence breaks.
    entry = _entry_id(db_session, chain, 3)
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("DELETE FROM ledger_seals WHERE entry_id = :e"), {"e": entry})
    db_session.execute(sa.text("DELETE FROM ledger_entries WHERE id = :e"), {"e": entry})
    db_session.commit()
    assert "attendu n° 3" in _first_problem(db_session, chain)


def test_deleted_entry_whose_seal_remains_is_detected(db_session, chain):
    _without_foreign_keys(db_session, ("DELETE FROM ledger_entries WHERE id = :e",
                                       {"e": _entry_id(db_session, chain, 3)}))
    problem = _first_problem(db_session, chain)
    assert "écriture n° 3" in problem and "supprimée" in problem


def test_inserted_entry_is_detected(db_session, chain):
    e, s = _entries(db_session, chain)[2]
    drop_ledger_protection(db_session)
    # Make room after seal 3 and insert a forged entry and seal copying entry 3.
    db_session.execute(sa.text("UPDATE ledger_seals SET seq = seq + 100 WHERE programme_id = :p AND seq > 3"),
                       {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_seals SET seq = seq - 99 WHERE programme_id = :p AND seq > 100"),
                       {"p": chain.id})
    forged = db_session.execute(sa.insert(LedgerEntry).values(
        programme_id=chain.id, created_at=e.created_at, nature=e.nature,
        to_state=e.to_state, to_holder_id=e.to_holder_id, from_state=e.from_state,
        from_holder_id=e.from_holder_id, pass_first_id=e.pass_first_id,
        pass_last_id=e.pass_last_id, serial_first=e.serial_first, serial_last=e.serial_last,
        count=e.count, amount_cents=e.amount_cents, entry_mac=e.entry_mac)
        .returning(LedgerEntry.id)).scalar_one()
    db_session.execute(sa.insert(LedgerSeal).values(programme_id=chain.id, seq=4, entry_id=forged,
                                                    prev_mac=s.mac, mac="0" * 64))
    db_session.commit()
    assert "écriture n° 4" in _first_problem(db_session, chain)


def test_swapped_entries_are_detected(db_session, chain):
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("UPDATE ledger_seals SET seq = 100 WHERE programme_id = :p AND seq = 4"), {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_seals SET seq = 4 WHERE programme_id = :p AND seq = 5"), {"p": chain.id})
    db_session.execute(sa.text("UPDATE ledger_seals SET seq = 5 WHERE programme_id = :p AND seq = 100"), {"p": chain.id})
    db_session.commit()
    assert "écriture n° 4" in _first_problem(db_session, chain)
    assert "chaînage rompu" in _first_problem(db_session, chain)


def test_swapped_entry_contents_are_detected(db_session, chain):
    """Seals kept in place, the entries they point to exchanged."""
    a, b = _entry_id(db_session, chain, 4), _entry_id(db_session, chain, 5)
    _without_foreign_keys(
        db_session,
        ("UPDATE ledger_seals SET entry_id = -1 WHERE entry_id = :a", {"a": a}),
        ("UPDATE ledger_seals SET entry_id = :a WHERE entry_id = :b", {"a": a, "b": b}),
        ("UPDATE ledger_seals SET entry_id = :b WHERE entry_id = -1", {"b": b}))
    assert "écriture n° 4" in _first_problem(db_session, chain)


def test_truncated_tail_is_detected_by_the_anchor(db_session, chain):
    ledger.anchor(db_session, chain.id, "2021-03")
    db_session.commit()
    drop_ledger_protection(db_session)
    # The attacker deletes the last two entries and seals and rolls the head back too.
    kept = _entries(db_session, chain)[3][1]
    gone = [e.id for e, s in _entries(db_session, chain) if s.seq > 4]
    db_session.execute(sa.delete(LedgerSeal).where(LedgerSeal.programme_id == chain.id, LedgerSeal.seq > 4))
    db_session.execute(sa.delete(LedgerEntry).where(LedgerEntry.id.in_(gone)))
    db_session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == chain.id)
                       .values(seq=4, mac=kept.mac))
    db_session.commit()
    problem = _first_problem(db_session, chain)
    assert "clôture 2021-03" in problem and "fin du journal supprimée" in problem


def test_truncated_tail_is_detected_by_the_head_without_anchor(db_session, chain):
    entry = _entry_id(db_session, chain, 6)
    drop_ledger_protection(db_session)
    db_session.execute(sa.text("DELETE FROM ledger_seals WHERE entry_id = :e"), {"e": entry})
    db_session.execute(sa.text("DELETE FROM ledger_entries WHERE id = :e"), {"e": entry})
    db_session.commit()
    assert "fin du journal supprimée" in _first_problem(db_session, chain)


def test_rewrite_without_the_key_is_detected(db_session, chain):
    """An attacker recomputes the whole chain with a key of their own."""
    real = keys.ledger_key()
    fake = b"attacker-key-without-the-real-one"
    drop_ledger_protection(db_session)
    prev = ledger.genesis_mac(fake, chain.id)
    for e, s in _entries(db_session, chain):
        values = ledger._chain_values(s.seq, tuple(getattr(e, f) for f in ledger._ENTRY_FIELDS))
        mac = ledger._mac(fake, prev, values)
        db_session.execute(sa.update(LedgerSeal).where(LedgerSeal.entry_id == e.id)
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
    _tamper(db_session, "UPDATE ledger_entries SET reason = 'x' WHERE id = :e",
            e=_entry_id(db_session, chain, 2))
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "écriture n° 2" in result.output


# ------------------------------------------------------------ entries not sealed yet

def _waiting(session, prog) -> list[LedgerEntry]:
    return [e for e, s in _entries(session, prog) if s is None]


def test_unsealed_edited_entry_is_detected_and_never_sealed(db_session, unsealed):
    target = _waiting(db_session, unsealed)[1]
    _tamper(db_session, "UPDATE ledger_entries SET count = count + 1 WHERE id = :e", e=target.id)
    problem = _first_problem(db_session, unsealed)
    assert f"id {target.id}" in problem and "sceau de l'écriture invalide" in problem
    report = ledger.seal(db_session, unsealed.id)
    assert report.sealed == 3 and len(report.refused) == 1 and f"id {target.id}" in report.refused[0]
    assert db_session.execute(sa.select(LedgerSeal).where(LedgerSeal.entry_id == target.id)).first() is None
    assert f"id {target.id}" in _first_problem(db_session, unsealed)


def test_unsealed_forged_entry_is_detected(db_session, unsealed):
    """Inserted without the key (its own MAC made up), queued by the trigger or not."""
    e = _waiting(db_session, unsealed)[0]
    drop_ledger_protection(db_session)
    forged = db_session.execute(sa.insert(LedgerEntry).values(
        programme_id=unsealed.id, created_at=e.created_at, nature=e.nature, to_state=e.to_state,
        to_holder_id=e.to_holder_id, from_state=e.from_state, from_holder_id=e.from_holder_id,
        pass_first_id=e.pass_first_id, pass_last_id=e.pass_last_id, serial_first=e.serial_first,
        serial_last=e.serial_last, count=e.count, amount_cents=e.amount_cents,
        entry_mac="0" * 64).returning(LedgerEntry.id)).scalar_one()
    db_session.commit()
    problem = _first_problem(db_session, unsealed)
    assert f"id {forged}" in problem and "forgée" in problem
    assert ledger.seal(db_session, unsealed.id).sealed <= 4
    assert db_session.execute(sa.select(LedgerSeal).where(LedgerSeal.entry_id == forged)).first() is None


def test_unsealed_copied_entry_written_past_the_queue_is_detected(db_session, unsealed):
    """A genuine entry's fields and own MAC copied into a new row (a replayed
    movement) with the queue trigger off: never sealed, reported."""
    e = _waiting(db_session, unsealed)[0]
    drop_ledger_protection(db_session)
    if db_session.get_bind().dialect.name != "postgresql":
        db_session.execute(sa.text("DROP TRIGGER ledger_entries_queue"))
    copy = db_session.execute(sa.insert(LedgerEntry).values(
        **{f: getattr(e, f) for f in ledger._ENTRY_FIELDS}, entry_mac=e.entry_mac)
        .returning(LedgerEntry.id)).scalar_one()
    db_session.commit()
    ledger.seal(db_session, unsealed.id)
    problem = _first_problem(db_session, unsealed)
    assert f"id {copy}" in problem and "hors du journal" in problem


def test_unsealed_deleted_entry_is_detected(db_session, unsealed):
    target = _waiting(db_session, unsealed)[2]
    _tamper(db_session, "DELETE FROM ledger_entries WHERE id = :e", e=target.id)
    problem = _first_problem(db_session, unsealed)
    assert f"id {target.id}" in problem and "supprimée avant son scellement" in problem
    ledger.seal(db_session, unsealed.id)
    assert f"id {target.id}" in _first_problem(db_session, unsealed)


def test_unsealed_truncated_tail_is_detected(db_session, unsealed):
    """The last waiting entries deleted, with their queue rows: the pass
    they moved no longer match the ledger's balances (reconciliation)."""
    last = _waiting(db_session, unsealed)[-1]
    drop_ledger_protection(db_session)
    db_session.execute(sa.delete(LedgerUnsealed).where(LedgerUnsealed.entry_id == last.id))
    db_session.execute(sa.delete(LedgerEntry).where(LedgerEntry.id == last.id))
    db_session.commit()
    ledger.seal(db_session, unsealed.id)
    report = ledger.verify(db_session, unsealed.id, reconcile=True)
    assert not report.ok and "ne correspondent plus aux pass" in report.first_problem


def test_unsealed_rewrite_without_the_key_is_detected(db_session, unsealed):
    fake = b"attacker-key-without-the-real-one"
    drop_ledger_protection(db_session)
    for e in _waiting(db_session, unsealed):
        mac = ledger._entry_mac(fake, tuple(
            (getattr(e, f) + 1 if f == "count" else getattr(e, f)) for f in ledger._ENTRY_FIELDS))
        db_session.execute(sa.update(LedgerEntry).where(LedgerEntry.id == e.id)
                           .values(count=LedgerEntry.count + 1, entry_mac=mac))
    db_session.commit()
    assert "sceau de l'écriture invalide" in _first_problem(db_session, unsealed)
    assert ledger.seal(db_session, unsealed.id).sealed == 0


def test_entry_left_unsealed_longer_than_the_bound_is_reported(db_session, unsealed, monkeypatch):
    monkeypatch.setattr(ledger, "SEAL_BOUND", __import__("datetime").timedelta(seconds=-1))
    report = ledger.verify(db_session, unsealed.id)
    assert not report.ok and len(report.problems) == 4
    assert "en attente de scellement depuis plus de" in report.first_problem
    ledger.seal(db_session, unsealed.id)
    assert ledger.verify(db_session, unsealed.id).ok


def test_anchor_is_idempotent_per_period(db_session, chain):
    first = ledger.anchor(db_session, chain.id, "2021-04")
    again = ledger.anchor(db_session, chain.id, "2021-04")
    assert first.id == again.id and first.head_seq == 6


def test_anchor_seals_first(db_session, unsealed):
    record = ledger.anchor(db_session, unsealed.id, "2021-04")
    db_session.commit()
    assert record.head_seq == 6 and not ledger.has_unsealed(db_session, unsealed.id)


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


def test_text_printed_by_the_database_matches_the_python_text(db_session, chain):
    """``verify`` has each entry's text printed by the database (SQLite: one
    printf() per row; PostgreSQL: concat_ws) and falls back to the typed
    values for a created_at outside years 1000–9999. Values that could trip
    a printed text — NULLs, '%' and '|' in the reason, accents, a year 999,
    the largest amounts — verify; the same entry edited does not."""
    import datetime as dt
    pass_id = db_session.execute(sa.select(sa.func.min(Pass.id))
                                 .where(Pass.programme_id == chain.id)).scalar()
    for reason, created in (("100 % réparti | %s %d %%", None),
                            ("", dt.datetime(999, 12, 31, 23, 59, 59, 999999,
                                             tzinfo=dt.timezone.utc)),
                            ("naïveté « ok »", dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc))):
        ledger.append(db_session, programme_id=chain.id, nature=Nature.LIVRAISON,
                      actor=Actor(None, None), from_state=None, from_holder_id=None,
                      to_state=PassState.EMIS, to_holder_id=None, pass_first_id=pass_id,
                      pass_last_id=pass_id, serial_first="A", serial_last="A", count=1,
                      amount_cents=2**62, reason=reason, created_at=created)
    db_session.commit()
    assert ledger.seal(db_session, chain.id).sealed == 3
    report = ledger.verify(db_session, chain.id)
    assert report.ok, report.problems
    assert report.entries == 9
    drop_ledger_protection(db_session)
    _tamper(db_session, "UPDATE ledger_entries SET reason = :r WHERE reason = :old",
            r="100 % réparti | %s %d %", old="100 % réparti | %s %d %%")
    assert "n° 7" in _first_problem(db_session, chain) and "contenu modifié" in \
        _first_problem(db_session, chain)
