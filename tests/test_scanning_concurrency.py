"""Exactly once under concurrency (issue 6, point 5; ENGINEERING.md).

Two threads, each with its own Session on the test database (a file on the
SQLite leg, a real database on the PostgreSQL leg), consume the same pass
at the same moment, for 2 000 pass: exactly one success per pair, no double
consumption, and no "database is locked" reaching the user.
"""
from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import operateurs, scanning
from portal.extensions import db
from portal.models import LedgerEntry, Nature, Pass, PassState, Scan
from scan_helpers import hand_out, qr, structure

PAIRS = 2_000


def test_two_threads_consume_each_pass_exactly_once(app):
    with app.app_context():
        ids = hand_out(db.session, carnets=range(701, 701 + PAIRS // 10))
        codes = [qr(p) for p in db.session.execute(
            sa.select(Pass).where(Pass.id.in_(ids)).order_by(Pass.id)).scalars()]
        engine = db.engine
    assert len(codes) == PAIRS
    # PostgreSQL runs several independent pair streams at once (row locks
    # let distinct pass proceed in parallel); SQLite serialises writers
    # anyway, so one stream.
    streams = 4 if engine.dialect.name == "postgresql" else 1
    chunk = PAIRS // streams
    results: dict[str, list[int]] = {}
    errors: list[str] = []

    def worker(name: str, slug: str, codes: list[str], barrier: threading.Barrier):
        session = Session(bind=engine, expire_on_commit=False)
        scanner = scanning.Scanner(structure(session, slug), None)
        service_id = operateurs.active_services(session, scanner.structure.id)[0].id
        session.commit()
        try:
            for index, code in enumerate(codes):
                barrier.wait(timeout=30)
                try:
                    outcome = scanning.consume_once(
                        session, scanning.ScanInput(code=code, service_id=service_id), scanner,
                        f"{name}-{index}")
                    results.setdefault(name, []).append(outcome.status)
                except Exception as exc:  # anything reaching the user is a failure
                    session.rollback()
                    errors.append(f"{type(exc).__name__}: {exc}")
                    results.setdefault(name, []).append(500)
        finally:
            session.close()

    started = time.monotonic()
    threads = []
    for n in range(streams):
        part, barrier = codes[n * chunk:(n + 1) * chunk], threading.Barrier(2)
        threads += [threading.Thread(target=worker, args=(f"a{n}", "bondy-centre-social", part,
                                                          barrier)),
                    threading.Thread(target=worker, args=(f"b{n}", "montreuil-mediatheque", part,
                                                          barrier))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert errors == [], errors[:5]
    assert not any("locked" in e for e in errors)
    pairs = [pair for n in range(streams)
             for pair in zip(results[f"a{n}"], results[f"b{n}"])]
    assert len(pairs) == PAIRS
    assert all(sorted(pair) == [201, 409] for pair in pairs), \
        [pair for pair in pairs if sorted(pair) != [201, 409]][:5]
    with app.app_context():
        live = db.session.execute(sa.select(sa.func.count()).select_from(Scan).where(
            Scan.cancelled_at.is_(None))).scalar()
        doubles = db.session.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(Scan.pass_id).group_by(Scan.pass_id)
                .having(sa.func.count() > 1).subquery())).scalar()
        scan_entries = db.session.execute(sa.select(sa.func.count()).where(
            LedgerEntry.nature == Nature.SCAN)).scalar()
        scanned = db.session.execute(sa.select(sa.func.count()).where(
            Pass.state == PassState.SCANNE)).scalar()
    assert (live, doubles, scan_entries, scanned) == (PAIRS, 0, PAIRS, PAIRS)
    # Timing is reported, not asserted (shared machines vary): measured 50-65 s
    # on SQLite and 53-65 s on PostgreSQL on a 2-core machine at load 4-7.
    print(f"\n{PAIRS} pairs in {elapsed:.1f} s")
