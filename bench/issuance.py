"""Bench: order 15 500 carnets (155 000 Pass Numériques, AMI 1's whole stock) at once.

Run from the project root:  .venv/bin/python bench/issuance.py

For each database (a fresh SQLite file in a temporary directory, then a fresh
PostgreSQL database ``pn_bench_issuance_<random>`` on
postgresql+psycopg://postgres@127.0.0.1:5432, dropped afterwards):

1. migrates it with ``portal.cli.upgrade()`` (Alembic, as in production);
2. creates the two tenants (mgp: metropole, aptic: mandataire) and the programme
   MGP1 (total_stock 155 000) with ``issuance.create_programme``;
3. times ``issuance.order_carnets(session, programme, 15_500, actor=…)`` and the
   commit: carnets, pass with their serials, EMISSION ledger entries;
4. checks that 155 000 pass exist, that the ledger balances say the same and
   that ``ledger.verify`` is ok.

Last line: ``RESULT sqlite_s=<x.xx> postgresql_s=<x.xx|skipped>``. Goal: <= 15 s on PostgreSQL.
"""
from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

from portal import create_app  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
CARNETS = 15_500
PASS_PER_CARNET = 10
TOTAL = CARNETS * PASS_PER_CARNET


def run(url: str, label: str) -> float:
    from portal.cli import upgrade
    from portal.domain import custody, issuance, ledger
    from portal.domain.ledger import Actor
    from portal.domain.permissions import TenantKind
    from portal.extensions import db
    from portal.models import Carnet, LedgerEntry, Pass, Tenant
    from portal.models.issuance import PassState

    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        print(f"[{label}] migrated in {time.perf_counter() - t0:.2f} s")
        session = db.session
        mgp = Tenant(kind=TenantKind.METROPOLE, slug="mgp", name="Métropole du Grand Paris")
        aptic = Tenant(kind=TenantKind.MANDATAIRE, slug="aptic", name="#APTIC")
        session.add_all([mgp, aptic])
        session.flush()
        programme = issuance.create_programme(
            session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 1",
            prefix="MGP1", total_stock=TOTAL, pass_per_carnet=PASS_PER_CARNET)
        session.commit()
        programme_id = programme.id

        t0 = time.perf_counter()
        order = issuance.order_carnets(session, programme, CARNETS, actor=Actor(None, aptic.id))
        t_order = time.perf_counter() - t0
        session.commit()
        elapsed = time.perf_counter() - t0
        print(f"[{label}] order_carnets({CARNETS}) {t_order:.2f} s + commit "
              f"{elapsed - t_order:.2f} s = {elapsed:.2f} s "
              f"({elapsed / TOTAL * 1e6:.1f} µs per pass)")

        # ---- checks
        t1 = time.perf_counter()
        passes = session.execute(sa.select(sa.func.count()).select_from(Pass)
                                 .where(Pass.programme_id == programme_id)).scalar()
        carnets = session.execute(sa.select(sa.func.count()).select_from(Carnet)
                                  .where(Carnet.order_id == order.id)).scalar()
        entries = session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)
                                  .where(LedgerEntry.programme_id == programme_id)).scalar()
        distinct_serials = session.execute(
            sa.select(sa.func.count(sa.distinct(Pass.serial)))
            .where(Pass.programme_id == programme_id)).scalar()
        balances = ledger.balances(session, programme_id)
        counts = custody.state_counts(session, programme_id)
        issued = ledger.issued_total(session, programme_id)
        report = ledger.verify(session, programme_id)
        print(f"[{label}] {passes} pass, {distinct_serials} distinct serials, {carnets} carnets, "
              f"{entries} ledger entries; issued {issued}; verify "
              f"{'ok' if report.ok else report.first_problem} "
              f"({time.perf_counter() - t1:.2f} s of checks)")
        expected_position = {(PassState.EMIS, aptic.id): TOTAL}
        problems = []
        if passes != TOTAL or distinct_serials != TOTAL:
            problems.append(f"{passes} pass / {distinct_serials} serials instead of {TOTAL}")
        if carnets != CARNETS:
            problems.append(f"{carnets} carnets instead of {CARNETS}")
        if issued != TOTAL or balances != expected_position or counts != expected_position:
            problems.append(f"ledger says {balances} (issued {issued}), pass table {counts}")
        if not report.ok:
            problems.append(f"ledger.verify: {report.first_problem}")
        session.remove()
        db.engine.dispose()
    if problems:
        raise SystemExit(f"[{label}] FAILED: " + "; ".join(problems))
    return elapsed


def run_sqlite() -> float:
    with tempfile.TemporaryDirectory(prefix="bench-issuance-") as tmp:
        return run(f"sqlite:///{os.path.join(tmp, 'bench.sqlite3')}", "sqlite")


def run_postgresql() -> float | None:
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        print(f"[postgresql] unreachable at {PG_SERVER} ({str(exc).splitlines()[0]}): skipped")
        admin.dispose()
        return None
    name = f"pn_bench_issuance_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        return run(f"{PG_SERVER}/{name}", "postgresql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> int:
    sqlite_s = run_sqlite()
    pg_s = run_postgresql()
    pg = "skipped" if pg_s is None else f"{pg_s:.2f}"
    print(f"RESULT sqlite_s={sqlite_s:.2f} postgresql_s={pg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
