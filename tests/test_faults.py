"""Faults: the database goes away (503 in French, then recovery by itself),
and a worker killed between its writes and its COMMIT leaves no half state."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import LEG, PG_ADMIN_URL, Browser, make_app
from helpers import issued_and_activated, new_programme
from portal.domain import custody, ledger
from portal.extensions import db

TESTS_DIR = Path(__file__).parent


def _assert_503_french(response):
    assert response.status_code == 503, response.status_code
    assert "Service momentanément indisponible" in response.text
    assert "Réessayez dans quelques instants" in response.text
    assert response.headers["Retry-After"] == "5"
    assert "Traceback" not in response.text and "sqlalchemy" not in response.text.lower()


@pytest.fixture
def fast_fail_app(leg, tmp_path, monkeypatch):
    """The demo app, with a short SQLite busy timeout so that a locked
    database fails in a fraction of a second."""
    url = leg.new_database(True, tmp_path)
    monkeypatch.setattr("portal.database.SQLITE_BUSY_TIMEOUT_MS", 200)
    overrides = {"PRINT_DIR": str(tmp_path / "prints")}
    if url.startswith("sqlite"):
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"timeout": 0.2, "check_same_thread": False}}
    app = make_app(url, **overrides)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    leg.drop(url)


def _signed_in(app, email="referent.montreuil"):
    return Browser(app).login(email)


@pytest.mark.skipif(LEG != "sqlite", reason="SQLite lock scenario (SQLite leg)")
def test_sqlite_locked_database_is_a_503_then_recovers(fast_fail_app):
    browser = _signed_in(fast_fail_app)
    assert browser.get("/commune/montreuil/").status_code == 200
    path = fast_fail_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    blocker = __import__("sqlite3").connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")   # another process holds the database
    try:
        _assert_503_french(browser.get("/commune/montreuil/"))
        _assert_503_french(browser.client.get("/connexion"))
        # The login page itself needs no database; signing in does.
        anonymous = Browser(fast_fail_app)
        assert anonymous.get("/connexion").status_code == 200
        _assert_503_french(anonymous.post("/connexion", {
            "email": "mgp.agent@demo.pass-numerique.fr", "password": "demo-pass-numerique"}))
        assert anonymous.get("/healthz").status_code == 503
        # htmx requests get the alert fragment, still 503.
        response = browser.get("/commune/montreuil/", headers={"HX-Request": "true"})
        assert response.status_code == 503 and response.headers["HX-Retarget"] == "#messages"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # Recovery without restart.
    assert browser.get("/commune/montreuil/").status_code == 200
    assert fast_fail_app.test_client().get("/healthz").status_code == 200


@pytest.mark.skipif(LEG != "sqlite", reason="SQLite file scenario (SQLite leg)")
def test_sqlite_unopenable_file_is_a_503(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/absent/sous-dossier/portal.sqlite3")
    try:
        _assert_503_french(Browser(app).post("/connexion", {
            "email": "mgp.agent@demo.pass-numerique.fr", "password": "demo-pass-numerique"}))
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.postgresql_only
def test_postgresql_outage_is_a_503_then_recovers(fast_fail_app):
    name = fast_fail_app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    browser = _signed_in(fast_fail_app)
    assert browser.get("/commune/montreuil/").status_code == 200

    def terminate(conn):
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")

    try:
        with admin.connect() as conn:
            # Killed connections alone are healed by pool_pre_ping…
            terminate(conn)
        assert browser.get("/commune/montreuil/").status_code == 200
        with admin.connect() as conn:
            # …a database refusing connections is a 503.
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            terminate(conn)
        _assert_503_french(browser.get("/commune/montreuil/"))
        _assert_503_french(Browser(fast_fail_app).post("/connexion", {
            "email": "mgp.agent@demo.pass-numerique.fr", "password": "demo-pass-numerique"}))
        assert fast_fail_app.test_client().get("/healthz").status_code == 503
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
    assert browser.get("/commune/montreuil/").status_code == 200
    assert fast_fail_app.test_client().get("/healthz").status_code == 200


def test_unanswering_postgresql_is_a_503_within_the_connect_timeout():
    """A PostgreSQL server that accepts TCP but never answers (frozen host,
    half-open network): without a connect timeout psycopg waits 130 s, past
    gunicorn's worker timeout, and the client gets no answer at all. Needs
    no database server: a bare listening socket plays the frozen one."""
    assert make_app("postgresql+psycopg://postgres@127.0.0.1:1/x").config[
        "SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 5}
    with __import__("socket").socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)          # the kernel accepts; nobody ever speaks
        port = frozen.getsockname()[1]
        app = make_app(f"postgresql+psycopg://postgres@127.0.0.1:{port}/portal",
                       DATABASE_CONNECT_TIMEOUT=2)   # libpq's minimum
        try:
            started = time.monotonic()
            assert app.test_client().get("/healthz").status_code == 503
            _assert_503_french(Browser(app).post("/connexion", {
                "email": "mgp.agent@demo.pass-numerique.fr",
                "password": "demo-pass-numerique"}))
            assert time.monotonic() - started < 12   # 2 × 2 s, far from 130 s
        finally:
            with app.app_context():
                db.engine.dispose()


def _stock_equation_holds(session, programme_id):
    report = ledger.verify(session, programme_id)
    assert report.ok, report.problems
    assert ledger.balances(session, programme_id) == custody.state_counts(session, programme_id)


def test_worker_killed_before_commit_leaves_no_half_state(app, tmp_path):
    from portal.models import LedgerEntry
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        prog = new_programme(db.session, "KIL")
        issued_and_activated(db.session, prog, 6)
        db.session.commit()
        prog_id = prog.id
        before = custody.state_counts(db.session, prog_id)
        entries_before = db.session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)
                                            ).scalar()
        _stock_equation_holds(db.session, prog_id)
        db.session.remove()
        db.engine.dispose()
    env = dict(os.environ, FAULT_PAUSE_BEFORE_COMMIT="60")
    worker = subprocess.Popen([sys.executable, str(TESTS_DIR / "fault_worker.py"), url, "KIL",
                               "bondy", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        line = worker.stdout.readline()
        assert line.startswith("WRITTEN 30"), (line, worker.stderr.read() if worker.poll() else "")
        os.kill(worker.pid, signal.SIGKILL)   # between the UPDATE and the COMMIT
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    with app.app_context():
        after = custody.state_counts(db.session, prog_id)
        assert after == before
        assert db.session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)
                                  ).scalar() == entries_before
        _stock_equation_holds(db.session, prog_id)
        db.session.remove()
        db.engine.dispose()
    # The same move, let to finish, commits both the pass and the ledger.
    done = subprocess.run([sys.executable, str(TESTS_DIR / "fault_worker.py"), url, "KIL",
                           "bondy", "3"], capture_output=True, text=True, timeout=60)
    assert "COMMITTED" in done.stdout, done.stderr[-2000:]
    with app.app_context():
        assert custody.state_counts(db.session, prog_id) != before
        _stock_equation_holds(db.session, prog_id)
