"""Bench: dashboards and reddition at national size, on PostgreSQL.

Run from the project root:  .venv/bin/python bench/dashboards.py
(PostgreSQL at ``PORTAL_TEST_PG_URL``, default postgres@127.0.0.1:5432).

1. creates its own database ``pn_bench_dash_<random>`` (dropped at the end),
   migrated by Alembic like every other database;
2. generates 80 commanditaires (one programme each), 1 500 communes, 3 000
   structures, 200 000 carnets, 2 000 000 pass of which 1 000 000 are scanned
   or beyond, and the ledger entries that lead to those states — one entry
   per livraison, répartition, carnet handed out, pass scanned, monthly
   contre-paiement and payment, about 1.1 M entries in all, with correct
   HMAC chains (tenants, programmes and conventions through the ORM; carnets,
   pass and entries with COPY; rollups with INSERT … SELECT … GROUP BY);
   plus the monthly ledger anchors the anchor job would have stored (each
   month's head, up to November 2021);
3. times, for one commanditaire, the Métropole dashboard server side (the
   page's figures plus every panel: ``metropole_dashboard`` +
   ``metropole_panels``), and the reddition des comptes of one year for one
   mandate (``reddition.build_statement``, which also verifies the HMAC
   chain since the last anchor) — best of 3 runs after one warm-up;
4. times the naive ``SELECT commune_id, state, count(*) FROM passes GROUP BY
   commune_id, state`` over the pass table (best of 3).

Last line: ``RESULT dashboard_ms=… reddition_ms=… naive_ms=… ratio=…`` with
ratio = max(dashboard, reddition) / naive. Goal: ratio <= 0.25.
The reddition reads its figures from the rollups (summed in SQL) and
verifies the HMAC chain from the last anchor only; log lines give the
reddition without any verification, and a full verification of the
programme's chain (the reddition page's lazy panel) for comparison.
Note: the bench has no Distribution rows (supporting records of the
reddition), so their loading is not timed.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

N_COMMANDITAIRES = 80
N_COMMUNES = 1500
PASS_TOTAL = int(2_000_000 * float(os.environ.get("BENCH_SCALE", "1")))   # smoke runs: 0.02
PASS_PER_CARNET = 10
FACE = 1000
PG_ADMIN = os.environ.get("PORTAL_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
UTC = dt.timezone.utc


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _copy(conn, table: str, columns: list[str], rows) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def generate(session, app) -> dict:
    from portal.domain import issuance, ledger
    from portal.domain.keys import ledger_key
    from portal.domain.permissions import TenantKind
    from portal.domain.rollups import CIRCULATION
    from portal.models import (Convention, LedgerAnchor, LedgerHead, PassOrder, Tenant, Tranche,
                               TrancheKind, TrancheStatus)
    rng = random.Random(7)
    issuer = Tenant(kind=TenantKind.MANDATAIRE, slug="aptic", name="#APTIC")
    session.add(issuer)
    metros = [Tenant(kind=TenantKind.METROPOLE, slug=f"cmd-{i:02d}", name=f"Commanditaire {i:02d}")
              for i in range(N_COMMANDITAIRES)]
    session.add_all(metros)
    session.flush()
    communes = []
    for j in range(N_COMMUNES):
        communes.append(Tenant(kind=TenantKind.COMMUNE, slug=f"commune-{j:04d}",
                               name=f"Commune {j:04d}", parent_id=metros[j % N_COMMANDITAIRES].id,
                               insee_code=f"{10000 + j}"))
    session.add_all(communes)
    session.flush()
    structures = {}
    for c in communes:
        p = Tenant(kind=TenantKind.STRUCTURE, slug=f"{c.slug}-p", name=f"CCAS {c.name}",
                   parent_id=c.id, is_prescripteur=True)
        o = Tenant(kind=TenantKind.STRUCTURE, slug=f"{c.slug}-o", name=f"Médiation {c.name}",
                   parent_id=c.id, is_operateur=True)
        session.add_all([p, o])
        structures[c.id] = (p, o)
    session.flush()
    per_prog = PASS_TOTAL // N_COMMANDITAIRES
    carnets_per_prog = per_prog // PASS_PER_CARNET
    programmes = []
    for i, metro in enumerate(metros):
        programmes.append(issuance.create_programme(
            session, commanditaire=metro, issuer=issuer, name=f"Programme {i:02d}",
            prefix=f"B{i:03d}", total_stock=per_prog, valid_until=dt.date(2022, 12, 31),
            tolerance_until=dt.date(2023, 1, 31), request_window_start=dt.date(2021, 1, 1),
            request_window_end=dt.date(2022, 10, 1)))
    session.flush()
    orders = []
    for p in programmes:
        o = PassOrder(programme_id=p.id, carnet_count=carnets_per_prog, first_carnet_number=1,
                      last_carnet_number=carnets_per_prog, key_id="K1",
                      ordered_at=dt.datetime(2021, 1, 2, tzinfo=UTC), payment_reference="M-1",
                      activated_at=dt.datetime(2021, 1, 3, tzinfo=UTC))
        session.add(o)
        orders.append(o)
    session.flush()
    conventions_by_prog = {}
    for p, metro in zip(programmes, metros):
        mine = [c for c in communes if c.parent_id == metro.id]
        conventions_by_prog[p.id] = mine
        for c in mine:
            conv = Convention(programme_id=p.id, commune_id=c.id, delivery_address="Mairie",
                              ends_on=dt.date(2022, 10, 31), referent_email=f"ref@{c.slug}.fr")
            session.add(conv)
            session.flush()
            session.add(Tranche(convention_id=conv.id, kind=TrancheKind.AMORCAGE,
                                status=TrancheStatus.RECUE, quantity=0,
                                confirmed_on=dt.date(2021, 1, 4), due_on=dt.date(2021, 2, 1),
                                received_on=dt.date(2021, 1, 20), received_quantity=0))
    session.commit()
    log(f"{len(metros)} commanditaires, {len(communes)} communes, {2 * len(communes)} "
        "structures, programmes and conventions created")

    key = ledger_key()
    conn = session.connection()
    # Bulk load: secondary indexes are rebuilt once at the end, and foreign-key
    # triggers are skipped while copying (rows are consistent by construction).
    saved_indexes = [row[1] for row in conn.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('passes', "
        "'ledger_entries', 'carnets') AND indexname NOT IN (SELECT conname FROM pg_constraint)"))]
    for (name,) in conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('passes', 'ledger_entries', "
            "'carnets') AND indexname NOT IN (SELECT conname FROM pg_constraint)")).all():
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    conn.execute(sa.text("SET session_replication_role = replica"))
    carnet_id = 0
    pass_id = 0
    entry_id = 0
    carnet_rows, pass_rows, entry_rows = [], [], []
    heads = {}
    anchors = []       # (programme id, period, head seq, head mac)
    received = {}
    t0 = time.perf_counter()
    for p, order in zip(programmes, orders):
        mine = conventions_by_prog[p.id]
        delivered_carnets = int(carnets_per_prog * 0.95)
        per_commune = delivered_carnets // len(mine)
        first_pass = pass_id + 1
        events = []   # (created_at, nature, from_state, from_holder, to_state, to_holder, commune, first, last)
        # Carnets and pass, in blocks per commune; the rest stays in the stock.
        blocks = []
        number = 0
        for c in mine:
            blocks.append((c, number + 1, number + per_commune))
            number += per_commune
        state_of = {}
        for c, first_no, last_no in blocks:
            n_pass = (last_no - first_no + 1) * PASS_PER_CARNET
            base = pass_id + (first_no - 1) * PASS_PER_CARNET + 1
            cuts = [int(n_pass * f) // 10 * 10 for f in (0.2, 0.4, 0.53, 0.7, 0.85)]
            state_of[c.id] = (base, n_pass, cuts)
        sp = p.prefix
        for k in range(1, carnets_per_prog + 1):
            carnet_id += 1
            carnet_rows.append((carnet_id, p.id, order.id, k))
            for idx in range(1, PASS_PER_CARNET + 1):
                pass_id += 1
                pass_rows.append((pass_id, p.id, carnet_id, idx, f"{sp}-{k:07d}-{idx:02d}-00"))
        # States per pass position within each commune block.
        states = {}
        for c, first_no, last_no in blocks:
            base, n_pass, (c_pay, c_cp, c_scan, c_dist, c_rep) = state_of[c.id]
            ps, os_ = structures[c.id]
            states[c.id] = (base, n_pass, c_pay, c_cp, c_scan, c_dist, c_rep, ps.id, os_.id)
            received[c.id] = n_pass
            day0 = dt.datetime(2021, 1, 20, 9, tzinfo=UTC)
            events.append((day0 + dt.timedelta(minutes=rng.randint(0, 600)), "livraison", "active",
                           p.commanditaire_id, "livre", c.id, c.id, base, base + n_pass - 1))
            events.append((dt.datetime(2021, 2, 10, 9, tzinfo=UTC) + dt.timedelta(
                minutes=rng.randint(0, 600)), "repartition", "livre", c.id, "reparti", ps.id, c.id,
                base, base + c_rep - 1))
            for off in range(0, c_dist, PASS_PER_CARNET):
                at = dt.datetime(2021, 3, 1, tzinfo=UTC) + dt.timedelta(
                    seconds=rng.randint(0, 120 * 86400))
                events.append((at, "distribution", "reparti", ps.id, "distribue", ps.id, c.id,
                               base + off, base + off + PASS_PER_CARNET - 1))
            for off in range(c_scan):
                at = dt.datetime(2021, 7, 1, tzinfo=UTC) + dt.timedelta(
                    seconds=rng.randint(0, 150 * 86400))
                events.append((at, "scan", "distribue", ps.id, "scanne", os_.id, c.id,
                               base + off, base + off))
            events.append((dt.datetime(2021, 12, 1, 8, tzinfo=UTC) + dt.timedelta(
                minutes=rng.randint(0, 600)), "contre_paiement", "scanne", os_.id,
                "contre_paiement", os_.id, c.id, base, base + c_cp - 1))
            events.append((dt.datetime(2021, 12, 15, 8, tzinfo=UTC) + dt.timedelta(
                minutes=rng.randint(0, 600)), "paiement", "contre_paiement", os_.id, "paye",
                os_.id, c.id, base, base + c_pay - 1))
        events.sort(key=lambda e: e[0])
        last_pass = pass_id
        prev = ledger.genesis_mac(key, p.id)
        seq = 0
        month = None
        head_events = [
            (dt.datetime(2021, 1, 2, tzinfo=UTC), "emission", None, None, "emis", p.issuer_id, None,
             first_pass, last_pass),
            (dt.datetime(2021, 1, 3, tzinfo=UTC), "activation", "emis", p.issuer_id, "active",
             p.commanditaire_id, None, first_pass, last_pass)]
        for at, nature, fs, fh, ts, th, commune, first, last in head_events + events:
            # The monthly anchor job (flask ledger anchor) closes each month
            # at the head it had then (Paris months; the bench's hours are
            # far from midnight, so UTC months are the same).
            if month is not None and (at.year, at.month) != month:
                anchors.append((p.id, f"{month[0]:04d}-{month[1]:02d}", seq, prev))
            month = (at.year, at.month)
            seq += 1
            entry_id += 1
            count = last - first + 1
            s_first = f"{sp}-{(first - first_pass) // 10 + 1:07d}-{(first - first_pass) % 10 + 1:02d}-00"
            s_last = f"{sp}-{(last - first_pass) // 10 + 1:07d}-{(last - first_pass) % 10 + 1:02d}-00"
            values = (p.id, seq, at, nature, None, None, fs, fh, ts, th, commune, first, last,
                      s_first, s_last, count, count * FACE, "", None, "")
            mac = ledger._mac(key, prev, values)
            entry_rows.append((entry_id, p.id, seq, at, nature, fs, fh, ts, th, commune, first, last,
                               s_first, s_last, count, count * FACE, "", "", prev, mac))
            prev = mac
        heads[p.id] = (seq, prev)
        # Pass final positions.
        for c, _f, _l in blocks:
            base, n_pass, c_pay, c_cp, c_scan, c_dist, c_rep, ps_id, os_id = states[c.id]
            for off in range(n_pass):
                if off < c_pay:
                    st, holder = "paye", os_id
                elif off < c_cp:
                    st, holder = "contre_paiement", os_id
                elif off < c_scan:
                    st, holder = "scanne", os_id
                elif off < c_dist:
                    st, holder = "distribue", ps_id
                elif off < c_rep:
                    st, holder = "reparti", ps_id
                else:
                    st, holder = "livre", c.id
                states.setdefault("pos", {})[base + off] = (st, holder, c.id)
        pos = states.get("pos", {})
        for i in range(len(pass_rows) - per_prog, len(pass_rows)):
            row = pass_rows[i]
            st, holder, commune = pos.get(row[0], ("active", p.commanditaire_id, None))
            pass_rows[i] = row + (st, holder, commune)
        if len(pass_rows) >= 400_000 or p is programmes[-1]:
            log(f"copying {len(pass_rows)} pass and {len(entry_rows)} entries "
                f"({time.perf_counter() - t0:.0f} s)")
            _copy(conn, "carnets", ["id", "programme_id", "order_id", "number"], carnet_rows)
            now = dt.datetime(2021, 12, 31, tzinfo=UTC)
            _copy(conn, "passes", ["id", "programme_id", "carnet_id", "index_in_carnet", "serial",
                                   "key_id", "state", "holder_id", "commune_id",
                                   "state_changed_at"],
                  ((r[0], r[1], r[2], r[3], r[4], "K1", r[5], r[6], r[7], now) for r in pass_rows))
            _copy(conn, "ledger_entries", [
                "id", "programme_id", "seq", "created_at", "nature", "from_state",
                "from_holder_id", "to_state", "to_holder_id", "commune_id", "pass_first_id",
                "pass_last_id", "serial_first", "serial_last", "count", "amount_cents",
                "ref_type", "reason", "prev_mac", "mac"], entry_rows)
            carnet_rows, pass_rows, entry_rows = [], [], []
    conn.execute(sa.text("SET session_replication_role = DEFAULT"))
    t1 = time.perf_counter()
    for definition in saved_indexes:
        conn.execute(sa.text(definition))
    log(f"indexes rebuilt ({time.perf_counter() - t1:.0f} s)")
    for pid, (seq, mac) in heads.items():
        session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == pid)
                        .values(seq=seq, mac=mac))
    # Monthly anchors up to the month before the last entries (December's
    # entries stay after the last anchor, so the reddition verifies some).
    session.add_all([LedgerAnchor(programme_id=pid, period=period, head_seq=seq, head_mac=mac,
                                  mac=ledger._anchor_mac(key, pid, period, seq, mac))
                     for pid, period, seq, mac in anchors])
    for table, col in (("carnets", "id"), ("passes", "id"), ("ledger_entries", "id")):
        session.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                                f"(SELECT max({col}) FROM {table}))"))
    log(f"{carnet_id} carnets, {pass_id} pass, {entry_id} ledger entries copied "
        f"({time.perf_counter() - t0:.0f} s)")
    # Rollups, as custody would have kept them.
    session.execute(sa.text(
        "INSERT INTO position_counts (programme_id, commune_id, state, holder_id, count) "
        "SELECT programme_id, COALESCE(commune_id, 0), state, COALESCE(holder_id, 0), count(*) "
        "FROM passes GROUP BY 1, 2, 3, 4"))
    session.execute(sa.text(
        "INSERT INTO flow_counts (programme_id, commune_id, day, nature, count, amount_cents, "
        "circulation) "
        "SELECT programme_id, COALESCE(commune_id, 0), "
        "(created_at AT TIME ZONE 'Europe/Paris')::date, nature, sum(count), sum(amount_cents), "
        "sum(CASE WHEN to_state IN :circ THEN count ELSE 0 END "
        "    - CASE WHEN from_state IN :circ THEN count ELSE 0 END) "
        "FROM ledger_entries GROUP BY 1, 2, 3, 4").bindparams(
        sa.bindparam("circ", expanding=True)), {"circ": sorted(s.value for s in CIRCULATION)})
    session.execute(sa.text("UPDATE tranches SET quantity = c.n, received_quantity = c.n "
                            "FROM (SELECT conventions.id AS cid, COALESCE(sum(pc.count), 0) AS n "
                            "FROM conventions LEFT JOIN position_counts pc ON "
                            "pc.programme_id = conventions.programme_id AND pc.commune_id = "
                            "conventions.commune_id GROUP BY conventions.id) c "
                            "WHERE tranches.convention_id = c.cid"))
    session.commit()
    session.execute(sa.text("ANALYZE"))
    scanned = session.execute(sa.text(
        "SELECT count(*) FROM passes WHERE state IN ('scanne', 'contre_paiement', 'paye')")).scalar()
    log(f"rollups built; {scanned} pass scanned or beyond")
    return {"programme": programmes[0], "issuer": issuer, "metro": metros[0]}


def best_of(fn, runs: int = 3) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times)


def main() -> None:
    from portal import create_app
    from portal.cli import upgrade
    from portal.domain import dashboards, mandate as mandates, reddition
    from portal.extensions import db
    from portal.web.dashboard_tables import metropole_panels
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"pn_bench_dash_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    started = time.perf_counter()
    try:
        app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url,
                          "SERVER_NAME": "localhost"})
        with app.app_context():
            upgrade()
            made = generate(db.session, app)
            programme, metro, issuer = made["programme"], made["metro"], made["issuer"]
            today = dt.date(2021, 12, 31)
            m = mandates.create_mandate(db.session, mandant=metro, mandataire=issuer,
                                        reference="MANDAT-BENCH", accord_cadre_reference="AC",
                                        accord_cadre_ends_on=dt.date(2022, 12, 31),
                                        starts_on=dt.date(2021, 1, 1), ends_on=dt.date(2023, 12, 31))
            db.session.commit()

            def dashboard():
                # The page's figures, then each panel as its own request would build it.
                dashboards.metropole_headline(db.session, programme, today)
                for build in metropole_panels(db.session, programme, today).values():
                    build()
                db.session.rollback()

            def statement():
                s = reddition.build_statement(db.session, m, dt.date(2021, 1, 1),
                                              dt.date(2021, 12, 31), dt.date.today())
                assert s.ledger_ok and not s.mismatches, s.mismatches[:3]
                db.session.rollback()

            def naive():
                db.session.execute(sa.text(
                    "SELECT commune_id, state, count(*) FROM passes GROUP BY commune_id, state")
                ).all()
                db.session.rollback()

            if os.environ.get("BENCH_PROFILE"):
                import cProfile
                import pstats
                for fn in (dashboard, statement):
                    profile = cProfile.Profile()
                    profile.runcall(fn)
                    pstats.Stats(profile).sort_stats("cumulative").print_stats(18)
            dashboard_ms = best_of(dashboard)
            log(f"dashboard (page + 5 panels, one commanditaire): {dashboard_ms:.1f} ms")
            reddition_ms = best_of(statement)
            log(f"reddition (one year, one mandate, chain verified since the last anchor): {reddition_ms:.1f} ms")

            def figures_only():
                reddition.build_statement(db.session, m, dt.date(2021, 1, 1),
                                          dt.date(2021, 12, 31), dt.date.today(),
                                          verify_chain=False)
                db.session.rollback()
            figures_ms = best_of(figures_only)
            log(f"reddition figures without the chain verification: {figures_ms:.1f} ms")
            full_ms = best_of(lambda: (reddition.full_verification(db.session, m),
                                       db.session.rollback()), runs=1)
            log(f"full chain verification (lazy panel of the reddition page): {full_ms:.1f} ms")
            naive_ms = best_of(naive)
            log(f"naive GROUP BY over the pass table: {naive_ms:.1f} ms")
            db.session.remove()
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    log(f"total bench time {time.perf_counter() - started:.0f} s")
    ratio = max(dashboard_ms, reddition_ms) / naive_ms
    log(f"without the chain verification the ratio would be "
        f"{max(dashboard_ms, figures_ms) / naive_ms:.3f} (reddition figures {figures_ms:.1f} ms)")
    print(f"RESULT dashboard_ms={dashboard_ms:.1f} reddition_ms={reddition_ms:.1f} "
          f"naive_ms={naive_ms:.1f} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
