"""The sealer (issue 18): killed in the middle of a batch, it loses nothing
and seals nothing twice; the chain resumes where the last committed batch
left it, and the rollups it keeps equal a recount."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import sqlalchemy as sa

from helpers import issued_and_activated, new_programme, tenant
from portal.domain import custody, ledger, rollups
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.models import LedgerEntry, LedgerSeal, LedgerUnsealed, Pass
from portal.models.ledger import Nature

TESTS_DIR = pathlib.Path(__file__).resolve().parent


def _counts(session, pid):
    def count(model, *where):
        return session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar()
    return (count(LedgerEntry, LedgerEntry.programme_id == pid),
            count(LedgerSeal, LedgerSeal.programme_id == pid),
            count(LedgerUnsealed, LedgerUnsealed.programme_id == pid))


def test_sealer_killed_mid_batch_resumes_with_nothing_lost_or_doubled(app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        session = db.session
        ledger.seal(session)                                   # the demo data's entries
        prog = new_programme(session, prefix="XYZ")
        issued_and_activated(session, prog, 12)
        carnets = session.execute(sa.select(Pass.carnet_id).where(Pass.programme_id == prog.id)
                                  .distinct().order_by(Pass.carnet_id)).scalars().all()
        for n, slug in enumerate(["bondy", "montreuil", "pantin", "sevran", "bondy", "pantin"]):
            custody.move(session, prog, nature=Nature.LIVRAISON,
                         criteria=[Pass.carnet_id.in_(carnets[2 * n:2 * n + 2])],
                         to_holder_id=tenant(session, slug).id, actor=Actor(None, None))
        session.commit()
        pid = prog.id
        total, sealed, queued = _counts(session, pid)
        assert sealed == 0 and queued == total >= 8
        session.remove()
        db.engine.dispose()
    # Batches of 3; killed after sending the seals of the 2nd batch, before its COMMIT.
    worker = subprocess.Popen([sys.executable, str(TESTS_DIR / "seal_worker.py"), url, "3", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    try:
        line = worker.stdout.readline()
        assert line.startswith("WRITTEN 3"), (line, worker.stderr.read() if worker.poll() else "")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    with app.app_context():
        session = db.session
        # The first batch is committed, the second left nothing behind.
        assert _counts(session, pid) == (total, 3, total - 3)
        report = ledger.verify(session, pid)
        assert report.ok and report.entries == 3 and report.pending == total - 3
        # The next sealer resumes at seq 4 and seals each remaining entry once.
        assert ledger.seal(session, pid, batch=3).sealed == total - 3
        assert _counts(session, pid) == (total, total, 0)
        seals = session.execute(sa.select(LedgerSeal.seq, LedgerSeal.entry_id).where(
            LedgerSeal.programme_id == pid).order_by(LedgerSeal.seq)).all()
        entry_ids = session.execute(sa.select(LedgerEntry.id).where(
            LedgerEntry.programme_id == pid).order_by(LedgerEntry.id)).scalars().all()
        assert [s.seq for s in seals] == list(range(1, total + 1))
        assert [s.entry_id for s in seals] == entry_ids          # each once, in entry order
        report = ledger.verify(session, pid, reconcile=True)
        assert report.ok and report.entries == total and report.pending == 0
        # The rollups were counted once per entry, by the committed batches only.
        assert rollups.positions(session, pid) == rollups.recount_positions(session, pid)
        assert rollups.flows(session, pid) == rollups.recount_flows(session, pid)
        assert ledger.seal(session, pid).sealed == 0
        session.remove()
        db.engine.dispose()


def test_seal_command_seals_and_reports(app):
    with app.app_context():
        prog = new_programme(db.session, prefix="XYZ")
        issued_and_activated(db.session, prog, 2)
        db.session.commit()
        assert ledger.has_unsealed(db.session, prog.id)
        db.session.remove()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "seal"])
    assert result.exit_code == 0, result.output
    assert "écritures scellées" in result.output
    result = runner.invoke(args=["ledger", "seal"])
    assert "Aucune écriture en attente" in result.output
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0 and "Journal intègre" in result.output, result.output
