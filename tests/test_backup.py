"""Backup and restore: a copy restored into a new database still verifies
(HMAC ledger chain) and keeps the stock equation (ledger = pass table)."""
from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from conftest import LEG, make_app
from helpers import issued_and_activated, new_programme, tenant
from portal.domain import custody, ledger
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.models import Pass, Programme
from portal.models.ledger import Nature


def _scenario(app) -> dict:
    """A programme with movements; returns what the restored copy must show."""
    with app.app_context():
        prog = new_programme(db.session, "ABC")
        issued_and_activated(db.session, prog, 4)
        custody.move(db.session, prog, nature=Nature.LIVRAISON,
                     criteria=[Pass.id.in_(sa.select(Pass.id).where(Pass.programme_id == prog.id)
                                           .order_by(Pass.id).limit(20))],
                     to_holder_id=tenant(db.session, "bondy").id, actor=Actor(None, None))
        db.session.commit()
        expected = {p.prefix: custody.state_counts(db.session, p.id)
                    for p in db.session.execute(sa.select(Programme)).scalars()}
        db.session.remove()
        db.engine.dispose()
    return expected


def _check_restored(url: str, expected: dict) -> None:
    restored = make_app(url)
    with restored.app_context():
        try:
            report = ledger.verify(db.session)
            assert report.ok, report.problems
            assert report.entries > 0
            for programme in db.session.execute(sa.select(Programme)).scalars():
                counts = custody.state_counts(db.session, programme.id)
                assert counts == expected[programme.prefix]
                assert ledger.balances(db.session, programme.id) == counts
            # The append-only triggers came back with the copy.
            with pytest.raises(sa.exc.DatabaseError):
                db.session.execute(sa.text("DELETE FROM ledger_entries"))
            db.session.rollback()
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.skipif(LEG != "sqlite", reason="SQLite backup (SQLite leg)")
def test_sqlite_backup_command_and_restore(app, tmp_path):
    expected = _scenario(app)
    backup = tmp_path / "sauvegarde.sqlite3"
    result = app.test_cli_runner().invoke(args=["backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert "Sauvegarde écrite" in result.output
    # Restoring = copying the backup file where DATABASE_URL points.
    restored = tmp_path / "restauree.sqlite3"
    shutil.copyfile(backup, restored)
    _check_restored(f"sqlite:///{restored}", expected)


@pytest.mark.postgresql_only
def test_postgresql_pg_dump_and_pg_restore(app, leg, tmp_path):
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed (Debian postgresql-client)")
    from portal.security.backup import restore_postgresql
    expected = _scenario(app)
    dump = tmp_path / "sauvegarde.dump"
    result = app.test_cli_runner().invoke(args=["backup", str(dump)])
    assert result.exit_code == 0, result.output
    target = leg.blank_database(tmp_path)
    try:
        restore_postgresql(sa.engine.make_url(target), str(dump))
        _check_restored(target, expected)
    finally:
        leg.drop(target)
