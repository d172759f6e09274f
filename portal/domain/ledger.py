"""The custody ledger (issuance issue; délibération 2022, CGCT L1611-7 IV;
sealing off the request path: issue 18).

Every movement of pass is one append-only entry, written in the same
transaction as the state change with its own MAC and no lock:

    entry_mac = HMAC-SHA256(key, "entry" | fields)

A database trigger queues it in ``ledger_unsealed``. The sealer (``seal``:
``flask ledger seal --loop``, or a job of the queue) then chains the queued
entries of each programme, in entry-id order, in batches, with an HMAC
keyed outside the database:

    mac_n = HMAC-SHA256(key, mac_{n-1} | fields_n)    (fields with seq = n)

writing one ``ledger_seals`` row per entry, the chain head
(``ledger_heads``) and the dashboards' rollups of the same batch, and
deleting the batch from the queue — all in one transaction, under the
head's row lock (one sealer per chain at a time). A monthly anchor
(``ledger_anchors``) stores the sealed head, so that deleting the tail or
rewriting the chain is detected even by someone able to recompute hashes
without the key. The database refuses UPDATE/DELETE on entries, seals and
anchors (triggers of migrations 0002 and 0014).
"""
from __future__ import annotations

import datetime as dt
import hmac
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from hashlib import sha256
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import keys
from portal.models import (LedgerAnchor, LedgerEntry, LedgerHead, LedgerSeal, LedgerUnsealed,
                           Programme, utcnow)
from portal.models.issuance import PassState
from portal.models.ledger import Nature


@dataclass(frozen=True)
class Actor:
    """Who acts: a user within a tenant, or the system (both None)."""
    user_id: int | None
    tenant_id: int | None


SYSTEM = Actor(None, None)

# The fields covered by the MAC, in order.
_FIELDS = ("programme_id", "seq", "created_at", "nature", "actor_user_id", "actor_tenant_id",
           "from_state", "from_holder_id", "to_state", "to_holder_id", "commune_id", "pass_first_id",
           "pass_last_id", "serial_first", "serial_last", "count", "amount_cents",
           "ref_type", "ref_id", "reason")


def _text(value) -> str:
    kind = type(value)
    if kind is str:           # fast paths (verification of long chains): same output
        return value
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)


def _mac(key: bytes, prev_mac: str, values: tuple) -> str:
    message = prev_mac + "|" + "|".join(_text(v) for v in values)
    return hmac.digest(key, message.encode(), sha256).hex()


# The fields of an entry as written (its MAC-covered fields but ``seq``,
# which the sealer gives it).
_ENTRY_FIELDS = tuple(f for f in _FIELDS if f != "seq")
_SEQ_AT = _FIELDS.index("seq")


def _entry_mac(key: bytes, values: tuple) -> str:
    """The entry's own MAC (``values`` in ``_ENTRY_FIELDS`` order): an edit,
    or an entry forged without the key, is detected before it is sealed."""
    return _mac(key, "entry", values)


def _chain_values(seq: int, entry_values: tuple) -> tuple:
    """``_FIELDS`` values of a sealed entry: its fields with its seq."""
    return entry_values[:_SEQ_AT] + (seq,) + entry_values[_SEQ_AT:]


def genesis_mac(key: bytes, programme_id: int) -> str:
    return hmac.digest(key, f"genesis|{programme_id}".encode(), sha256).hex()


def create_chain(session: Session, programme_id: int) -> None:
    """Called once when a programme is created."""
    session.add(LedgerHead(programme_id=programme_id, seq=0,
                           mac=genesis_mac(keys.ledger_key(), programme_id)))
    session.flush()


@dataclass
class Head:
    """The chain head as locked for this transaction (plain values: the
    head row is written with Core statements, never through the ORM)."""
    programme_id: int
    seq: int
    mac: str


_HEADS = cast(sa.Table, LedgerHead.__table__)
_ENTRIES = cast(sa.Table, LedgerEntry.__table__)
_SEALS = cast(sa.Table, LedgerSeal.__table__)
_QUEUE = cast(sa.Table, LedgerUnsealed.__table__)
_INSERT_ENTRY = _ENTRIES.insert()
_LOCK_HEAD = (sa.select(_HEADS.c.seq, _HEADS.c.mac)
              .where(_HEADS.c.programme_id == sa.bindparam("programme_id")).with_for_update())
_SET_HEAD = (_HEADS.update().where(_HEADS.c.programme_id == sa.bindparam("p_id"))
             .values(seq=sa.bindparam("new_seq"), mac=sa.bindparam("new_mac")))


def lock_head(session: Session, programme_id: int) -> Head:
    """Lock the chain head for the rest of the transaction (PostgreSQL row
    lock; SQLite transactions are already serialised by BEGIN IMMEDIATE).
    Taken by the sealer, and by the few business rules that need one
    programme-wide lock (orders, tranche confirmations); never by a scan."""
    seq, mac = session.execute(_LOCK_HEAD, {"programme_id": programme_id}).one()
    return Head(programme_id, seq, mac)


def append(session: Session, *, programme_id: int, nature: Nature, actor: Actor,
           from_state: PassState | None, from_holder_id: int | None,
           to_state: PassState, to_holder_id: int | None,
           pass_first_id: int, pass_last_id: int, serial_first: str, serial_last: str,
           count: int, amount_cents: int, ref_type: str = "", ref_id: int | None = None,
           reason: str = "", created_at: dt.datetime | None = None,
           commune_id: int | None = None) -> None:
    """Write one entry with its own MAC, in the caller's transaction, without
    any lock: its place in the chain is given later by ``seal``. One Core
    INSERT (the database trigger queues it for the sealer)."""
    created_at = created_at or utcnow()
    # Round-trip through the column type so the MAC covers exactly what is stored.
    created_at = created_at.astimezone(dt.timezone.utc)
    row = {
        "programme_id": programme_id, "created_at": created_at,
        "nature": Nature(nature), "actor_user_id": actor.user_id,
        "actor_tenant_id": actor.tenant_id,
        "from_state": PassState(from_state) if from_state else None,
        "from_holder_id": from_holder_id, "to_state": PassState(to_state),
        "to_holder_id": to_holder_id, "commune_id": commune_id, "pass_first_id": pass_first_id,
        "pass_last_id": pass_last_id, "serial_first": serial_first, "serial_last": serial_last,
        "count": count, "amount_cents": amount_cents, "ref_type": ref_type, "ref_id": ref_id,
        "reason": reason[:500],
    }
    row["entry_mac"] = _entry_mac(keys.ledger_key(), tuple(row[f] for f in _ENTRY_FIELDS))
    session.execute(_INSERT_ENTRY, row)


# ---------------------------------------------------------------- sealing

# How long an entry may wait for its seal before ``verify`` reports it
# (the sealer loop runs every second; PORTAL_LEDGER_SEAL_BOUND overrides).
SEAL_BOUND = dt.timedelta(seconds=60)
SEAL_BATCH = 2_000

_ENTRY_COLUMNS = [_ENTRIES.c.id, _ENTRIES.c.entry_mac, *(_ENTRIES.c[f] for f in _ENTRY_FIELDS)]


@dataclass
class SealReport:
    sealed: int = 0
    refused: list[str] = field(default_factory=list)    # entries whose own MAC is wrong
    read: int = 0                                       # queued entries read by the last batch


def pending_programmes(session: Session) -> list[int]:
    return list(session.execute(sa.select(_QUEUE.c.programme_id).distinct()
                                .order_by(_QUEUE.c.programme_id)).scalars())


def seal_batch(session: Session, programme_id: int, *, batch: int = SEAL_BATCH,
               report: SealReport | None = None) -> SealReport:
    """Seal up to ``batch`` queued entries of one programme, in entry-id
    order, in the caller's transaction (the caller commits): lock the head,
    check each entry's own MAC, write its seal (seq = head + 1, …), move the
    head, add the batch to the rollups, delete the batch from the queue.

    Exactly once: the seals, the head, the rollups and the queue change in
    one transaction, under the head's row lock — a sealer killed before
    COMMIT leaves nothing, the next one seals the same entries; UNIQUE
    ``entry_id`` and the (programme, seq) key forbid a second seal. An entry
    whose own MAC is wrong (edited or forged before it was sealed) is not
    sealed: it stays queued and ``verify`` reports it."""
    from portal.domain import rollups

    report = report or SealReport()
    key = keys.ledger_key()
    head = lock_head(session, programme_id)
    queued = session.execute(
        sa.select(_QUEUE.c.entry_id).where(_QUEUE.c.programme_id == programme_id)
        .order_by(_QUEUE.c.entry_id).limit(batch)).scalars().all()
    report.read = len(queued)
    if not queued:
        return report
    rows = session.execute(sa.select(*_ENTRY_COLUMNS).where(_ENTRIES.c.id.in_(queued))
                           .order_by(_ENTRIES.c.id)).all()
    now = utcnow()
    seals, done, entries = [], [], []
    seq, prev = head.seq, head.mac
    for row in rows:
        values = tuple(row[2:])
        if row.programme_id != programme_id or row.entry_mac is None or not hmac.compare_digest(
                row.entry_mac, _entry_mac(key, values)):
            report.refused.append(f"programme {programme_id}, écriture id {row.id} : contenu "
                                  "modifié avant son scellement (sceau de l'écriture invalide)")
            continue
        seq += 1
        mac = _mac(key, prev, _chain_values(seq, values))
        seals.append({"programme_id": programme_id, "seq": seq, "entry_id": row.id,
                      "prev_mac": prev, "mac": mac, "sealed_at": now})
        done.append(row.id)
        entries.append(row)
        prev = mac
    if seals:
        session.execute(_SEALS.insert(), seals)
        session.execute(_SET_HEAD, {"p_id": programme_id, "new_seq": seq, "new_mac": prev})
        rollups.add_entries(session, programme_id, entries)
        session.execute(_QUEUE.delete().where(_QUEUE.c.entry_id.in_(done)))
    report.sealed += len(seals)
    return report


def seal(session: Session, programme_id: int | None = None, *, batch: int = SEAL_BATCH,
         commit: bool = True) -> SealReport:
    """Seal every queued entry (of one programme, or of all), one batch per
    transaction when ``commit``."""
    report = SealReport()
    for pid in [programme_id] if programme_id else pending_programmes(session):
        while True:
            sealed = report.sealed
            seal_batch(session, pid, batch=batch, report=report)
            if commit:
                session.commit()
            if report.read < batch or report.sealed == sealed:
                break
    return report


def has_unsealed(session: Session, programme_id: int | None = None) -> bool:
    query = sa.select(_QUEUE.c.entry_id)
    if programme_id is not None:
        query = query.where(_QUEUE.c.programme_id == programme_id)
    return session.execute(query.limit(1)).first() is not None


def settle(session: Session, programme_id: int | None = None) -> None:
    """Seal first: what the readers of sealed figures (reddition, anchors,
    dashboards' rollups) call before reading, so that they see every
    committed movement. Writes (and commits) only if something is queued."""
    if has_unsealed(session, programme_id):
        seal(session, programme_id)


# ---------------------------------------------------------------- anchors

def _anchor_mac(key: bytes, programme_id: int, period: str, head_seq: int, head_mac: str) -> str:
    return hmac.digest(key, f"anchor|{programme_id}|{period}|{head_seq}|{head_mac}".encode(),
                       sha256).hex()


def anchor(session: Session, programme_id: int, period: str) -> LedgerAnchor:
    """Store the chain head as the closing record of ``period`` (YYYY-MM).
    Anchoring the same period twice returns the first anchor unchanged."""
    existing = session.execute(sa.select(LedgerAnchor).where(
        LedgerAnchor.programme_id == programme_id, LedgerAnchor.period == period)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    seal(session, programme_id, commit=False)   # anchors read only sealed entries
    head = lock_head(session, programme_id)
    record = LedgerAnchor(programme_id=programme_id, period=period, head_seq=head.seq,
                          head_mac=head.mac,
                          mac=_anchor_mac(keys.ledger_key(), programme_id, period,
                                          head.seq, head.mac))
    session.add(record)
    session.flush()
    return record


# ---------------------------------------------------------------- verification

@dataclass
class VerifyReport:
    ok: bool
    entries: int
    problems: list[str]
    # In ``since_anchor`` mode, programme id -> the anchor the check started
    # from (its entries up to the anchor were verified when it was made).
    started_from: dict = field(default_factory=dict)
    # Entries waiting for their seal for less than the bound (not problems).
    pending: int = 0

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def _fields_text(dialect_name: str):
    """How ``verify`` gets a sealed entry's ``"|" + "|".join(_text(v) for v
    in <its _FIELDS>)`` without loading one typed value per field: returns
    the one column to select (from ``ledger_seals`` joined to
    ``ledger_entries``: ``seq`` is the seal's); where it is NULL, ``verify``
    builds the text from the typed values (``python_message``).

    PostgreSQL prints the text itself (integers and enum values print as in
    Python, NULL as "", created_at as "%Y-%m-%dT%H:%M:%S.%f" in UTC; its text
    holds no NUL and its types are strict, so the text is exact). SQLite
    builds it too, from the raw stored values (as the typed columns would
    return them but for enums, stored as their values, and created_at,
    which, stored by UtcDateTime, becomes ``_text``'s text by swapping its
    separator for "T"). An entry dated before the year 1000 or whose
    created_at is not 26 characters long goes through ``python_message``:
    the typed values and ``_text``. A text that differs from ``_text``'s can
    only make a MAC fail, never pass: the bytes hashed for a genuine entry
    are ``_mac``'s."""
    entries, seals = _ENTRIES, _SEALS

    def source(name):
        return seals.c.seq if name == "seq" else entries.c[name]
    if dialect_name == "postgresql":
        utc = sa.func.timezone("UTC", entries.c.created_at)
        parts = [sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US') if name == "created_at"
                 else sa.cast(source(name), sa.Text) for name in _FIELDS]
        text = sa.func.concat_ws("|", "", *(sa.func.coalesce(part, "") for part in parts))
        printable = sa.extract("year", utc).between(1000, 9999)
        return sa.type_coerce(sa.case((printable, text), else_=sa.null()), sa.String)

    # SQLite: the same text built by SQLite itself from the raw stored values
    # (integers print as in Python, enums are stored as their values, NULL →
    # ""), created_at — as UtcDateTime stores it, "YYYY-MM-DD HH:MM:SS.ffffff"
    # in UTC — with "T" for its separator; any other created_at gives NULL
    # and goes through ``python_message``.
    stamp = sa.type_coerce(entries.c.created_at, sa.String)
    # One printf() per row rather than a CAST, a COALESCE and two
    # concatenations per field (printf's %s prints an integer as Python does
    # and NULL as ""); created_at is printed by the same printf, its first 10
    # characters, "T", the rest. created_at not in the stored format (or no
    # entry: the outer join) gives NULL, and the entry goes through
    # ``python_message``.
    formats: list[str] = []
    fields: list[sa.ColumnElement] = []
    for name in _FIELDS:
        if name == "created_at":
            formats.append("|%.10sT%s")
            fields += [stamp, sa.func.substr(stamp, 12)]
        else:
            formats.append("|%s")
            fields.append(source(name))
    # The stored format is 26 characters, years 1000-9999 (UtcDateTime
    # writes it; a GLOB over each character cost 0.5 s per million entries).
    # Another 26-character value would print a text that fails its MAC.
    # (substr: the column's NUMERIC affinity would turn "1000" into a number.)
    stored_format = sa.and_(sa.func.length(stamp) == 26,
                            sa.func.substr(stamp, 1, 4) >= "1000")
    printed = sa.case((stored_format, sa.func.printf("".join(formats), *fields)),
                      else_=sa.null())
    return sa.type_coerce(printed, sa.String)


def last_anchor(session: Session, programme_id: int) -> LedgerAnchor | None:
    return session.execute(sa.select(LedgerAnchor).where(
        LedgerAnchor.programme_id == programme_id)
        .order_by(LedgerAnchor.head_seq.desc(), LedgerAnchor.id.desc()).limit(1)).scalar()


_PREFETCH = 2       # batches read ahead by ``_raw_partitions``'s reader thread


def _raw_partitions(connection, statement, batch: int):
    """The rows of ``statement`` as plain DBAPI tuples, ``batch`` at a time
    (no SQLAlchemy Row per entry: verify reads a million of them). A
    server-side cursor on PostgreSQL; SQLite's cursor reads rows as they are
    fetched anyway. The values need no type processing (integers and text).

    On PostgreSQL a reader thread fetches up to ``_PREFETCH`` batches ahead
    while the caller hashes the previous ones: psycopg waits on the server
    without the GIL, so reading and hashing overlap (bench/ledger_verify.py,
    1 M entries: 6.1 s → 3.8 s). Not on SQLite: its module takes the GIL
    back after every row, and the reader thread, starved by the hashing
    loop, made the same verify slower (5.2 s → 7.2 s). The caller does not
    use the connection while the reader does, but for ``verify``'s rare
    ``python_message`` (psycopg's connection lock serialises the two)."""
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    driver = connection.connection.driver_connection
    if dialect.name == "postgresql":
        params = compiled.params
        cursor = driver.cursor(name="pn_ledger_verify")
    else:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
        cursor = driver.cursor()
    ahead: queue.Queue = queue.Queue(maxsize=_PREFETCH)
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                rows = cursor.fetchmany(batch)
                ahead.put(rows)
                if not rows:
                    return
        except BaseException as error:      # handed to the caller's thread
            ahead.put(error)

    try:
        cursor.execute(str(compiled), params)
        if dialect.name != "postgresql":
            while rows := cursor.fetchmany(batch):
                yield rows
            return
        reader = threading.Thread(target=read, name="ledger-verify-read", daemon=True)
        reader.start()
        try:
            while True:
                item = ahead.get()
                if isinstance(item, BaseException):
                    raise item
                if not item:
                    return
                yield item
        finally:
            stop.set()
            while reader.is_alive():        # let a reader blocked on a full queue finish
                try:
                    ahead.get_nowait()
                except queue.Empty:
                    pass
                reader.join(timeout=0.05)
    finally:
        cursor.close()


def seal_bound() -> dt.timedelta:
    import os
    seconds = os.environ.get("PORTAL_LEDGER_SEAL_BOUND")
    return dt.timedelta(seconds=float(seconds)) if seconds else SEAL_BOUND


def _unsealed_problems(session: Session, pid: int, sealed: int, key: bytes,
                       now: dt.datetime) -> tuple[int, list[str]]:
    """Entries of the chain without a seal: those waiting in the queue for
    less than the bound, with a valid own MAC, are fine (returns how many);
    any other is a problem — waiting too long (the sealer is stopped),
    edited or forged before its seal (own MAC invalid), or written past the
    queue (inserted behind the triggers)."""
    total = session.execute(sa.select(sa.func.count()).select_from(_ENTRIES)
                            .where(_ENTRIES.c.programme_id == pid)).scalar()
    queued = session.execute(sa.select(sa.func.count()).select_from(_QUEUE)
                             .where(_QUEUE.c.programme_id == pid)).scalar()
    if total == sealed and not queued:
        return 0, []
    problems, pending = [], 0
    for (entry_id,) in session.execute(
            sa.select(_QUEUE.c.entry_id).where(
                _QUEUE.c.programme_id == pid,
                ~sa.exists().where(_ENTRIES.c.id == _QUEUE.c.entry_id))
            .order_by(_QUEUE.c.entry_id)):
        problems.append(f"programme {pid}, écriture id {entry_id} (non scellée) : écriture "
                        "supprimée avant son scellement")
    rows = session.execute(
        sa.select(*_ENTRY_COLUMNS, _QUEUE.c.queued_at)
        .outerjoin(_QUEUE, _QUEUE.c.entry_id == _ENTRIES.c.id)
        .where(_ENTRIES.c.programme_id == pid,
               ~sa.exists().where(_SEALS.c.entry_id == _ENTRIES.c.id))
        .order_by(_ENTRIES.c.id)).all()
    bound = seal_bound()
    for row in rows:
        values = tuple(row[2:-1])
        label = f"programme {pid}, écriture id {row.id} (non scellée)"
        if row.entry_mac is None or not hmac.compare_digest(row.entry_mac,
                                                            _entry_mac(key, values)):
            problems.append(f"{label} : contenu modifié ou écriture forgée (sceau de l'écriture "
                            "invalide)")
        elif row.queued_at is None:
            problems.append(f"{label} : écriture insérée hors du journal (absente de la file "
                            "de scellement)")
        elif now.timestamp() - row.queued_at > bound.total_seconds():
            problems.append(f"{label} : en attente de scellement depuis plus de "
                            f"{int(bound.total_seconds())} s (le scelleur est-il arrêté ?)")
        else:
            pending += 1
    return pending, problems


def verify(session: Session, programme_id: int | None = None, *, batch: int = 20_000,
           since_anchor: bool = False, reconcile: bool = False) -> VerifyReport:
    """Recompute every sealed chain, then look at the entries not sealed
    yet. Reports the first bad seal of each chain: edited (MAC differs),
    deleted/inserted/swapped (seq or link broken, entry missing), truncated
    tail (head or an anchor points past the last seal), anchors or heads
    that do not match; and every entry left unsealed longer than the bound
    (``SEAL_BOUND``), edited before its seal or written past the queue.

    ``since_anchor``: start each chain at its last anchor instead of its
    genesis — the anchor's own HMAC is checked, the seal it names must still
    carry its ``head_mac``, and only the later seals are recomputed (the
    monthly anchor job, ``flask ledger anchor``, verifies the chain before it
    anchors, so the entries up to an anchor were verified then). This is the
    reddition's check; an edit of an entry older than the last anchor is
    only found by a full verification (``flask ledger verify``, the
    reddition page's "vérification complète" panel).

    ``reconcile``: also compare, per programme, the balances of the sealed
    ledger with the pass themselves (``flask ledger verify`` does): the one
    check that sees an entry deleted *with its queue row* before it was
    sealed — the pass it moved no longer match the ledger. Seal first.

    Speed (bench/ledger_verify.py, 1 000 000 entries: 2.5-2.8 × a bare
    HMAC loop): each seal's message — its prev_mac and the entry's text — is
    printed by the database (``_fields_text``), rows are read as plain DBAPI
    tuples (``_raw_partitions``, a reader thread ahead on PostgreSQL), four
    columns per entry, and the HMAC is OpenSSL's one-shot ``hmac.digest``;
    the bytes hashed are ``_mac``'s."""
    key = keys.ledger_key()
    digest = hmac.digest
    programme_ids = [programme_id] if programme_id else list(session.execute(
        sa.select(Programme.id).order_by(Programme.id)).scalars())
    problems: list[str] = []
    total = 0
    pending_total = 0
    now = utcnow()
    connection = session.connection()
    typed_fields = [_SEALS.c.seq if f == "seq" else getattr(LedgerEntry, f) for f in _FIELDS]

    def python_message(entry_id: int) -> str | None:
        """The message of an entry the database could not print (or None:
        the seal's entry is gone): its seal's prev_mac, then its text."""
        row = session.execute(sa.select(_SEALS.c.prev_mac, *typed_fields).join_from(
            _SEALS, _ENTRIES, _ENTRIES.c.id == _SEALS.c.entry_id)
            .where(_SEALS.c.entry_id == entry_id)).first()
        return None if row is None else row[0] + "|" + "|".join(_text(v) for v in row[1:])

    # What each seal's MAC covers, as the database prints it: prev_mac, then
    # the entry's text (NULL when it cannot print it, or the entry is gone).
    message_column = sa.type_coerce(_SEALS.c.prev_mac + _fields_text(connection.dialect.name),
                                    sa.String)

    started_from: dict = {}
    for pid in programme_ids:
        prev = genesis_mac(key, pid)
        expected_seq = 1
        macs_at: dict[int, str] = {}
        start = last_anchor(session, pid) if since_anchor else None
        if start is not None:
            label = f"programme {pid}, clôture {start.period}"
            if not hmac.compare_digest(start.mac, _anchor_mac(key, pid, start.period,
                                                              start.head_seq, start.head_mac)):
                problems.append(f"{label} : clôture falsifiée")
                continue
            at_anchor = genesis_mac(key, pid) if start.head_seq == 0 else session.execute(
                sa.select(_SEALS.c.mac).where(_SEALS.c.programme_id == pid,
                                              _SEALS.c.seq == start.head_seq)).scalar()
            if at_anchor != start.head_mac:
                problems.append(f"{label} : l'écriture n° {start.head_seq} "
                                + ("n'existe plus (journal tronqué)" if at_anchor is None else
                                   "ne correspond plus à la clôture (journal réécrit)"))
                continue
            prev, expected_seq = start.head_mac, start.head_seq + 1
            started_from[pid] = start
            anchors = []
        else:
            anchors = list(session.execute(sa.select(LedgerAnchor).where(
                LedgerAnchor.programme_id == pid).order_by(LedgerAnchor.head_seq)).scalars())
        first_seq = expected_seq
        wanted = {a.head_seq for a in anchors}
        problem = None
        # Plain Core rows; a server-side cursor where there is one (PostgreSQL),
        # SQLite's cursor reads rows as they are fetched anyway.
        partitions = _raw_partitions(
            connection,
            sa.select(_SEALS.c.seq, _SEALS.c.entry_id, _SEALS.c.mac, message_column)
            .select_from(_SEALS.outerjoin(_ENTRIES, _ENTRIES.c.id == _SEALS.c.entry_id))
            .where(_SEALS.c.programme_id == pid, _SEALS.c.seq >= first_seq)
            .order_by(_SEALS.c.seq), batch)
        try:
            for rows in partitions:
                for seq, entry_id, stored_mac, message in rows:
                    if seq != expected_seq:
                        kind = "supprimée" if seq > expected_seq else "insérée ou dupliquée"
                        problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : rupture de "
                                   f"séquence (attendu n° {expected_seq}, écriture {kind})")
                        break
                    if message is None:
                        # Not printed by the database: an unusual value, or no entry
                        # (the outer join) — the rare path reads it typed.
                        message = python_message(entry_id)
                        if message is None:
                            problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : "
                                       "écriture supprimée (son sceau demeure)")
                            break
                    if not message.startswith(prev):       # the seal's prev_mac
                        problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : chaînage "
                                   "rompu (écriture déplacée, insérée ou supprimée avant elle)")
                        break
                    mac = digest(key, message.encode(), "sha256").hex()
                    # A plain comparison: stored MACs are not a secret an attacker
                    # probes through verify's timing (0.1 s per million entries).
                    if mac != stored_mac:
                        problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : contenu "
                                   "modifié (sceau HMAC invalide)")
                        break
                    if seq in wanted:
                        macs_at[seq] = mac
                    prev = mac
                    expected_seq += 1
                if problem:
                    break
        finally:
            partitions.close()       # stops the reader thread, closes the cursor
        if problem:
            problems.append(problem)
            total += session.execute(sa.select(sa.func.count()).select_from(_SEALS)
                                     .where(_SEALS.c.programme_id == pid)).scalar_one()
            continue
        total += expected_seq - first_seq
        last_seq = expected_seq - 1
        for a in anchors:
            label = f"programme {pid}, clôture {a.period}"
            if not hmac.compare_digest(a.mac, _anchor_mac(key, pid, a.period, a.head_seq, a.head_mac)):
                problems.append(f"{label} : clôture falsifiée")
            elif a.head_seq > last_seq:
                problems.append(f"{label} : la clôture mentionne l'écriture n° {a.head_seq} mais le "
                                f"journal s'arrête au n° {last_seq} (fin du journal supprimée)")
            elif macs_at.get(a.head_seq) != a.head_mac:
                problems.append(f"{label} : l'écriture n° {a.head_seq} ne correspond plus à la "
                                "clôture (journal réécrit)")
        head = session.get(LedgerHead, pid, populate_existing=True)
        if head is not None and (head.seq != last_seq or head.mac != prev):
            if head.seq > last_seq:
                problems.append(f"programme {pid} : la tête de chaîne mentionne l'écriture "
                                f"n° {head.seq} mais le journal s'arrête au n° {last_seq} "
                                "(fin du journal supprimée)")
            else:
                problems.append(f"programme {pid} : la tête de chaîne ne correspond pas à la "
                                f"dernière écriture (n° {last_seq})")
        pending, unsealed = _unsealed_problems(session, pid, last_seq, key, now)
        pending_total += pending
        problems.extend(unsealed)
        if reconcile and not pending:
            from portal.domain import custody
            if balances(session, pid) != custody.state_counts(session, pid):
                problems.append(f"programme {pid} : les soldes du journal ne correspondent plus "
                                "aux pass (écriture supprimée avant son scellement ?)")
    return VerifyReport(ok=not problems, entries=total, problems=problems,
                        started_from=started_from, pending=pending_total)


# ---------------------------------------------------------------- balances

def balances(session: Session, programme_id: int, at: dt.datetime | None = None
             ) -> dict[tuple[PassState, int | None], int]:
    """Pass per position (state, holder) at ``at`` (default: now), from the
    ledger alone: what entered the position minus what left it."""
    where = [LedgerEntry.programme_id == programme_id]
    if at is not None:
        where.append(LedgerEntry.created_at <= at)
    totals: dict[tuple[PassState, int | None], int] = defaultdict(int)
    incoming = session.execute(
        sa.select(LedgerEntry.to_state, LedgerEntry.to_holder_id, sa.func.sum(LedgerEntry.count))
        .where(*where).group_by(LedgerEntry.to_state, LedgerEntry.to_holder_id))
    for state, holder, n in incoming:
        totals[(state, holder)] += int(n)
    outgoing = session.execute(
        sa.select(LedgerEntry.from_state, LedgerEntry.from_holder_id,
                  sa.func.sum(LedgerEntry.count))
        .where(*where, LedgerEntry.from_state.is_not(None))
        .group_by(LedgerEntry.from_state, LedgerEntry.from_holder_id))
    for state, holder, n in outgoing:
        totals[(state, holder)] -= int(n)
    return {k: v for k, v in totals.items() if v}


def issued_total(session: Session, programme_id: int, at: dt.datetime | None = None) -> int:
    where = [LedgerEntry.programme_id == programme_id, LedgerEntry.nature == Nature.EMISSION]
    if at is not None:
        where.append(LedgerEntry.created_at <= at)
    return int(session.execute(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.count), 0))
                               .where(*where)).scalar_one())
