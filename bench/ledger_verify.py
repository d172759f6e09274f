"""Bench: verify a custody ledger of 1 000 000 entries (one programme).

Run from the project root:  .venv/bin/python bench/ledger_verify.py

For each database (a fresh SQLite file in a temporary directory, then, when the
server answers, a fresh PostgreSQL database ``pn_bench_ledger_<random>`` on
postgresql+psycopg://postgres@127.0.0.1:5432, dropped afterwards):

1. migrates it (``portal.cli.upgrade()``), creates the tenants, a user and the
   programme MGP1 (``issuance.create_programme``, which starts the chain);
2. builds 1 000 000 entries in Python with the entry MAC that
   ``portal.domain.ledger.append`` writes and the seals (seq / prev_mac /
   mac) that ``ledger.seal_batch`` would write (its ``_FIELDS``, ``_mac``,
   ``_entry_mac`` and ``genesis_mac``), a life cycle of plausible
   movements, plus one monthly anchor every 100 000 entries; bulk-loads them
   (SQLite: executemany in batches; PostgreSQL: COPY, with the foreign-key
   and queue triggers of this bench database off during the load, as
   pg_restore does), empties the sealer's queue and sets the chain head;
3. times ``ledger.verify(session, programme_id)``: ok, 1 000 000 entries;
4. times, in the same run, a bare HMAC-SHA256 loop (``hmac.digest``) over
   as many 200-byte messages: ``ratio_to_hmac`` = verify / that loop;
5. drops the append-only triggers (``tests/helpers.py``
   ``drop_ledger_protection``), edits the entry sealed n° 500 000 with raw
   SQL and checks that verify names that entry.

Last line: ``RESULT seconds_1m=<sqlite> seconds_1m_postgresql=<x.xx|skipped>
hmac_s=… ratio_to_hmac=<sqlite> ratio_to_hmac_postgresql=…``.
Goals: seconds_1m <= 10; ratio_to_hmac <= 3 (issue 18).
``BENCH_LEDGER_ENTRIES`` sets another number of entries (the seconds are
then scaled to 1 M in ``seconds_1m``).
"""
from __future__ import annotations

import datetime as dt
import operator
import os
import random
import secrets
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

import sqlalchemy as sa  # noqa: E402

from portal import create_app  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
ENTRIES = int(os.environ.get("BENCH_LEDGER_ENTRIES", 1_000_000))
BATCH = 50_000
ANCHOR_EVERY = 100_000
TAMPERED_SEQ = ENTRIES // 2
PREFIX = "MGP1"
PASS_PER_CARNET = 10
FACE_VALUE = 1000

# Columns written, in this order: the MAC-covered fields, then the chain links.
COLUMNS = None  # set in main() once portal.domain.ledger is imported
SEAL_COLUMNS = ("programme_id", "seq", "entry_id", "prev_mac", "mac", "sealed_at")


def generate(programme_id: int, tenants: dict[str, int], user_id: int, genesis: str):
    """Yield ("entries", rows, mac of the last one) for one chain, each row a
    list in COLUMNS order as the database stores it (enums as their values;
    created_at still a datetime), then ("anchors", [(period, head_seq,
    head_mac)], head mac). The MACs are ``ledger._mac`` of the typed values,
    as ``ledger.append`` computes them. Deterministic (seeded)."""
    from portal.domain import custody, keys, ledger, serials
    from portal.models import LedgerEntry
    from portal.models.issuance import PassState as S
    from portal.models.ledger import Nature as N

    key = keys.ledger_key()
    rnd = random.Random(20210301)
    table = LedgerEntry.__table__
    enum_positions = [i for i, f in enumerate(("id", *ledger._ENTRY_FIELDS))
                      if f != "id" and isinstance(table.c[f].type, sa.Enum)]
    fields = operator.itemgetter(*ledger._FIELDS)
    n_pass = 155_000
    serial_of = [""] + [serials.format_serial(PREFIX, (p - 1) // PASS_PER_CARNET + 1,
                                              (p - 1) % PASS_PER_CARNET + 1)
                        for p in range(1, n_pass + 1)]
    holder_of_state = {
        S.EMIS: tenants["aptic"], S.ACTIVE: tenants["mgp"], S.LIVRE: tenants["bondy"],
        S.REPARTI: tenants["bondy-ccas"], S.RESTITUE: tenants["mgp"],
    }
    delivered = {S.LIVRE, S.REPARTI, S.DISTRIBUE, S.SCANNE, S.CONTRE_PAIEMENT, S.PAYE}
    # One template per nature: the fields that depend on the nature only
    # (every MAC field present; fields this bench does not know stay NULL).
    templates = {}
    for nature in [N.EMISSION, *custody.TRANSITIONS]:
        if nature is N.EMISSION:
            from_state, to_state = None, S.EMIS
        else:
            allowed, to_state = custody.TRANSITIONS[nature]
            from_state = min(allowed, key=lambda s: s.value)
        from_holder = holder_of_state.get(from_state) if from_state else None
        issuer_side = nature in (N.EMISSION, N.ACTIVATION)
        templates[nature] = {
            **dict.fromkeys(ledger._FIELDS), "programme_id": programme_id, "nature": nature,
            "from_state": from_state, "from_holder_id": from_holder, "to_state": to_state,
            "to_holder_id": holder_of_state.get(to_state),
            "actor_tenant_id": tenants["aptic"] if issuer_side else (from_holder or tenants["mgp"]),
            "commune_id": tenants["bondy"] if to_state in delivered else None,
            "reason": "Carnet déclaré perdu | vol" if nature is N.BLOCAGE else "",
            "ref_type": "commande" if issuer_side else "",
        }
    moves = list(custody.TRANSITIONS)   # every nature but EMISSION
    base = dt.datetime(2021, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
    step = dt.timedelta(microseconds=25_123_457)   # 1 M entries over ~290 days
    prev = genesis
    batch = []
    anchors = []
    for seq in range(1, ENTRIES + 1):
        nature = N.EMISSION if seq % 500 == 1 else moves[int(rnd.random() * len(moves))]
        row = dict(templates[nature])
        count = (1 + int(rnd.random() * 10)) * (10 if nature in (N.EMISSION, N.ACTIVATION)
                                                 else 1)
        first = 1 + int(rnd.random() * (n_pass - count + 1))
        row.update(seq=seq, created_at=base + step * seq, count=count,
                   amount_cents=count * FACE_VALUE, pass_first_id=first,
                   pass_last_id=first + count - 1, serial_first=serial_of[first],
                   serial_last=serial_of[first + count - 1],
                   actor_user_id=user_id if seq % 3 else None,
                   ref_id=seq // 500 + 1 if row["ref_type"] else None)
        values = fields(row)
        mac = ledger._mac(key, prev, values)
        entry_values = values[:1] + values[2:]          # without seq
        stored = [seq, *entry_values]                   # id = seq (fresh database)
        for i in enum_positions:
            if stored[i] is not None:
                stored[i] = stored[i].value
        stored.append(ledger._entry_mac(key, entry_values))
        batch.append((stored, [programme_id, seq, seq, prev, mac, row["created_at"]]))
        prev = mac
        if seq % ANCHOR_EVERY == 0:
            month = 2 + seq // ANCHOR_EVERY          # 2021-03, 2021-04, …
            anchors.append((f"{2021 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}", seq, mac))
        if len(batch) == BATCH:
            yield "entries", batch, prev
            batch = []
    if batch:
        yield "entries", batch, prev
    yield "anchors", anchors, prev


def load(session, programme_id, tenants, user_id) -> tuple[int, str, list]:
    """Bulk-load the chain into the session's database; returns (entries, head mac, anchors)."""
    from portal.domain import keys, ledger
    from portal.models import LedgerEntry

    table = LedgerEntry.__table__
    connection = session.connection()
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    genesis = ledger.genesis_mac(keys.ledger_key(), programme_id)
    names = ", ".join(COLUMNS)
    seal_names = ", ".join(SEAL_COLUMNS)
    created = COLUMNS.index("created_at")
    total, head_mac, anchors = 0, genesis, []
    chunks = generate(programme_id, tenants, user_id, genesis)
    if dialect.name == "postgresql":
        # This bench database only: skip the per-row foreign-key triggers
        # during the bulk load (pg_restore --disable-triggers does the same).
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        seal_rows = []
        with driver.cursor() as cursor, \
                cursor.copy(f"COPY ledger_entries ({names}) FROM STDIN") as copy:
            for kind, chunk, head_mac in chunks:
                if kind == "anchors":
                    anchors = chunk
                    break
                for row, seal in chunk:
                    copy.write_row(row)
                    seal_rows.append(seal)
                total += len(chunk)
        with driver.cursor() as cursor, \
                cursor.copy(f"COPY ledger_seals ({seal_names}) FROM STDIN") as copy:
            for seal in seal_rows:
                copy.write_row(seal)
        del seal_rows
        connection.exec_driver_sql("SET LOCAL session_replication_role = origin")
    else:
        # What UtcDateTime sends to SQLite: "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
        bind = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        sql = f"INSERT INTO ledger_entries ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"
        seal_sql = (f"INSERT INTO ledger_seals ({seal_names}) "
                    f"VALUES ({', '.join('?' * len(SEAL_COLUMNS))})")
        cursor = driver.cursor()
        for kind, chunk, head_mac in chunks:
            if kind == "anchors":
                anchors = chunk
                break
            for row, seal in chunk:
                row[created] = bind(row[created])
                seal[5] = row[created]
            cursor.executemany(sql, [row for row, _ in chunk])
            cursor.executemany(seal_sql, [seal for _, seal in chunk])
            total += len(chunk)
        cursor.execute("DELETE FROM ledger_unsealed")      # sealed here, not by the sealer
        cursor.close()
    return total, head_mac, anchors


def run(url: str, label: str) -> float:
    from helpers import drop_ledger_protection

    from portal.cli import upgrade
    from portal.domain import issuance, keys, ledger
    from portal.domain.permissions import TenantKind
    from portal.extensions import db
    from portal.models import LedgerAnchor, LedgerHead, Tenant, User

    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        session = db.session
        mgp = Tenant(kind=TenantKind.METROPOLE, slug="mgp", name="Métropole du Grand Paris")
        aptic = Tenant(kind=TenantKind.MANDATAIRE, slug="aptic", name="#APTIC")
        session.add_all([mgp, aptic])
        session.flush()
        bondy = Tenant(kind=TenantKind.COMMUNE, slug="bondy", name="Bondy", parent_id=mgp.id)
        session.add(bondy)
        session.flush()
        ccas = Tenant(kind=TenantKind.STRUCTURE, slug="bondy-ccas", name="CCAS de Bondy",
                      parent_id=bondy.id)
        user = User(email="bench@example.org", full_name="Bench", password_hash="x")
        session.add_all([ccas, user])
        session.flush()
        programme = issuance.create_programme(session, commanditaire=mgp, issuer=aptic,
                                              name="Pass Numérique MGP — AMI 1", prefix=PREFIX)
        session.commit()
        pid = programme.id
        tenants = {t.slug: t.id for t in (mgp, aptic, bondy, ccas)}

        t0 = time.perf_counter()
        total, head_mac, anchors = load(session, pid, tenants, user.id)
        key = keys.ledger_key()
        for period, head_seq, mac in anchors:
            session.add(LedgerAnchor(programme_id=pid, period=period, head_seq=head_seq,
                                     head_mac=mac,
                                     mac=ledger._anchor_mac(key, pid, period, head_seq, mac)))
        session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == pid)
                        .values(seq=total, mac=head_mac))
        session.commit()
        if session.get_bind().dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE ledger_entries")
        else:
            session.execute(sa.text("ANALYZE"))
            session.commit()
        print(f"[{label}] built and loaded {total} entries and {len(anchors)} anchors in "
              f"{time.perf_counter() - t0:.1f} s")
        session.expire_all()

        t0 = time.perf_counter()
        report = ledger.verify(session, pid)
        seconds = time.perf_counter() - t0
        session.rollback()
        print(f"[{label}] verify: {seconds:.2f} s for {report.entries} entries "
              f"({seconds / max(report.entries, 1) * 1e6:.2f} µs per entry), "
              f"{'ok' if report.ok else report.problems}")
        failures = []
        if not report.ok or report.entries != ENTRIES:
            failures.append(f"intact chain: ok={report.ok}, {report.entries} entries, "
                            f"{report.problems[:3]}")

        drop_ledger_protection(session)
        session.execute(sa.text("UPDATE ledger_entries SET count = count + 1 WHERE id = "
                                "(SELECT entry_id FROM ledger_seals WHERE programme_id = :p "
                                "AND seq = :s)"),
                        {"p": pid, "s": TAMPERED_SEQ})
        session.commit()
        t0 = time.perf_counter()
        tampered = ledger.verify(session, pid)
        tampered_s = time.perf_counter() - t0
        session.rollback()
        print(f"[{label}] after editing entry n° {TAMPERED_SEQ}: verify {tampered_s:.2f} s: "
              f"{tampered.first_problem}")
        if tampered.ok or f"écriture n° {TAMPERED_SEQ} " not in (tampered.first_problem or "") \
                or "contenu modifié" not in tampered.first_problem \
                or len(tampered.problems) != 1:
            failures.append(f"tampered chain: {tampered.problems[:3]}")
        session.remove()
        db.engine.dispose()
    if failures:
        raise SystemExit(f"[{label}] FAILED: " + "; ".join(failures))
    return seconds


def hmac_loop(n: int) -> float:
    """Seconds for a bare HMAC-SHA256 (``hmac.digest``) over ``n`` 200-byte
    messages (made before the clock starts), with the ledger's key."""
    import hmac as hmac_module

    from portal.domain import keys
    key = keys.ledger_key()
    messages = [(f"{i:064d}|" + "x" * 135).encode() for i in range(n)]
    assert all(len(m) == 200 for m in messages[:10])
    digest = hmac_module.digest
    t0 = time.perf_counter()
    for m in messages:
        digest(key, m, "sha256")
    return time.perf_counter() - t0


def run_sqlite() -> float:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
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
    name = f"pn_bench_ledger_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        return run(f"{PG_SERVER}/{name}", "postgresql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> int:
    global COLUMNS
    from portal.domain import ledger
    COLUMNS = ("id", *ledger._ENTRY_FIELDS, "entry_mac")
    os.environ.setdefault("PORTAL_ENV", "testing")
    scale = 1_000_000 / ENTRIES
    t0 = time.perf_counter()
    sqlite_s = run_sqlite()
    print(f"[sqlite] leg done in {time.perf_counter() - t0:.1f} s")
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        hmac_s = hmac_loop(ENTRIES)
    print(f"bare HMAC-SHA256 over {ENTRIES} 200-byte messages: {hmac_s:.2f} s")
    t0 = time.perf_counter()
    pg_s = run_postgresql()
    if pg_s is not None:
        print(f"[postgresql] leg done in {time.perf_counter() - t0:.1f} s")
    pg = "skipped" if pg_s is None else f"{pg_s * scale:.2f}"
    pg_ratio = "skipped" if pg_s is None else f"{pg_s / hmac_s:.2f}"
    print(f"RESULT seconds_1m={sqlite_s * scale:.2f} seconds_1m_postgresql={pg} "
          f"hmac_s={hmac_s * scale:.2f} ratio_to_hmac={sqlite_s / hmac_s:.2f} "
          f"ratio_to_hmac_postgresql={pg_ratio} entries={ENTRIES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
