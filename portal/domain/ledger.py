"""The custody ledger (issuance issue; délibération 2022, CGCT L1611-7 IV).

Every movement of pass is one append-only entry, written in the same
transaction as the state change, chained per programme with an HMAC keyed
outside the database:

    mac_n = HMAC-SHA256(key, mac_{n-1} | fields_n)

Appending locks the chain's head row (``ledger_heads``), so the entries of
one programme get consecutive ``seq`` numbers in commit order. A monthly
anchor (``ledger_anchors``) stores the head, so that deleting the tail or
rewriting the chain is detected even by someone able to recompute hashes
without the key. The database refuses UPDATE/DELETE on entries and anchors
(triggers of migration 0002).
"""
from __future__ import annotations

import datetime as dt
import hmac
import re
from collections import defaultdict
from dataclasses import dataclass, field
from hashlib import sha256

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import keys
from portal.models import LedgerAnchor, LedgerEntry, LedgerHead, Programme, utcnow
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


_HEADS = LedgerHead.__table__
_ENTRIES = LedgerEntry.__table__
_INSERT_ENTRY = _ENTRIES.insert()
_LOCK_HEAD = (sa.select(_HEADS.c.seq, _HEADS.c.mac)
              .where(_HEADS.c.programme_id == sa.bindparam("programme_id")).with_for_update())
_SET_HEAD = (_HEADS.update().where(_HEADS.c.programme_id == sa.bindparam("p_id"))
             .values(seq=sa.bindparam("new_seq"), mac=sa.bindparam("new_mac")))


def lock_head(session: Session, programme_id: int) -> Head:
    """Lock the chain head for the rest of the transaction (PostgreSQL row
    lock; SQLite transactions are already serialised by BEGIN IMMEDIATE)."""
    seq, mac = session.execute(_LOCK_HEAD, {"programme_id": programme_id}).one()
    return Head(programme_id, seq, mac)


def append(session: Session, *, programme_id: int, nature: Nature, actor: Actor,
           from_state: PassState | None, from_holder_id: int | None,
           to_state: PassState, to_holder_id: int | None,
           pass_first_id: int, pass_last_id: int, serial_first: str, serial_last: str,
           count: int, amount_cents: int, ref_type: str = "", ref_id: int | None = None,
           reason: str = "", created_at: dt.datetime | None = None,
           head: Head | None = None, commune_id: int | None = None) -> int:
    """Append one entry; returns its seq. Call it last in the transaction
    to keep the head lock short."""
    head = head or lock_head(session, programme_id)
    seq = head.seq + 1
    created_at = created_at or utcnow()
    # Round-trip through the column type so the MAC covers exactly what is stored.
    created_at = created_at.astimezone(dt.timezone.utc)
    row = {
        "programme_id": programme_id, "seq": seq, "created_at": created_at,
        "nature": Nature(nature), "actor_user_id": actor.user_id,
        "actor_tenant_id": actor.tenant_id,
        "from_state": PassState(from_state) if from_state else None,
        "from_holder_id": from_holder_id, "to_state": PassState(to_state),
        "to_holder_id": to_holder_id, "commune_id": commune_id, "pass_first_id": pass_first_id,
        "pass_last_id": pass_last_id, "serial_first": serial_first, "serial_last": serial_last,
        "count": count, "amount_cents": amount_cents, "ref_type": ref_type, "ref_id": ref_id,
        "reason": reason[:500],
    }
    row["prev_mac"] = head.mac
    row["mac"] = _mac(keys.ledger_key(), head.mac, tuple(row[f] for f in _FIELDS))
    # Core statements: no ORM unit of work on the hot path (scans).
    session.execute(_INSERT_ENTRY, row)
    session.execute(_SET_HEAD, {"p_id": programme_id, "new_seq": seq, "new_mac": row["mac"]})
    head.seq, head.mac = seq, row["mac"]
    return seq


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

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def _hmac_sha256_pads(key: bytes):
    """The ``copy`` methods of two SHA-256 states fed with the key's inner and
    outer pads (RFC 2104): hashing a message with a copy of the inner state,
    then its digest with a copy of the outer state, gives ``hmac.digest(key,
    message, sha256)`` without hashing the key again for every message
    (about twice as fast for the short messages of the ledger)."""
    if len(key) > 64:                       # SHA-256 block size
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    return (sha256(bytes(b ^ 0x36 for b in key)).copy,
            sha256(bytes(b ^ 0x5C for b in key)).copy)


# created_at as UtcDateTime stores it on SQLite (UTC), for the years 1000 to 9999.
_SQLITE_STORED_UTC = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
                                r"\.[0-9]{6}")


def _fields_text(dialect_name: str, python_text):
    """How ``verify`` gets an entry's ``"|" + "|".join(_text(v) for v in
    <its _FIELDS>)`` without loading one typed value per field: returns the
    columns to select and ``text_of(selected values, entry id)``.

    PostgreSQL prints the text itself (integers and enum values print as in
    Python, NULL as "", created_at as "%Y-%m-%dT%H:%M:%S.%f" in UTC; its text
    holds no NUL and its types are strict, so the text is exact). Elsewhere
    the raw stored values are read, as the typed columns would return them
    but for enums (stored as their values) and created_at, which, stored by
    UtcDateTime on SQLite, becomes ``_text``'s text by swapping its separator
    for "T". Any other entry (a year before 1000, a value stored otherwise)
    goes through ``python_text``: the typed values and ``_text``."""
    entries = LedgerEntry.__table__
    if dialect_name == "postgresql":
        utc = sa.func.timezone("UTC", entries.c.created_at)
        parts = [sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US') if name == "created_at"
                 else sa.cast(entries.c[name], sa.Text) for name in _FIELDS]
        text = sa.func.concat_ws("|", "", *(sa.func.coalesce(part, "") for part in parts))
        printable = sa.extract("year", utc).between(1000, 9999)
        column = sa.type_coerce(sa.case((printable, text), else_=sa.null()), sa.String)

        def text_of(values, entry_id: int) -> str:
            return python_text(entry_id) if values[0] is None else values[0]
        return [column], text_of

    at = _FIELDS.index("created_at")
    canonical = _SQLITE_STORED_UTC.fullmatch

    def text_of(values, entry_id: int) -> str:
        stamp = values[at]
        if type(stamp) is not str or not canonical(stamp):
            return python_text(entry_id)
        parts = ["" if v is None else str(v) for v in values]
        parts[at] = stamp[:10] + "T" + stamp[11:]
        return "|" + "|".join(parts)
    # Raw values: no Enum / UtcDateTime conversion of the results.
    return [sa.type_coerce(entries.c[name], sa.String) for name in _FIELDS], text_of


def last_anchor(session: Session, programme_id: int) -> LedgerAnchor | None:
    return session.execute(sa.select(LedgerAnchor).where(
        LedgerAnchor.programme_id == programme_id)
        .order_by(LedgerAnchor.head_seq.desc(), LedgerAnchor.id.desc()).limit(1)).scalar()


def verify(session: Session, programme_id: int | None = None, *, batch: int = 20_000,
           since_anchor: bool = False) -> VerifyReport:
    """Recompute every chain. Reports the first bad entry of each chain:
    edited (MAC differs), deleted/inserted/swapped (seq or link broken),
    truncated tail (head or an anchor points past the last entry), and
    anchors or heads that do not match the entries.

    ``since_anchor``: start each chain at its last anchor instead of its
    genesis — the anchor's own HMAC is checked, the entry it names must still
    carry its ``head_mac``, and only the later entries are recomputed (the
    monthly anchor job, ``flask ledger anchor``, verifies the chain before it
    anchors, so the entries up to an anchor were verified then). This is the
    reddition's check; an edit of an entry older than the last anchor is
    only found by a full verification (``flask ledger verify``, the
    reddition page's "vérification complète" panel).

    Speed (bench/ledger_verify.py, 1 000 000 entries): each entry's text is
    built from raw or database-printed values (``_fields_text``), rows are
    read as plain Core rows, and the HMAC starts from the key's pads hashed
    once (``_hmac_sha256_pads``); the bytes hashed are still ``_mac``'s."""
    key = keys.ledger_key()
    inner_copy, outer_copy = _hmac_sha256_pads(key)
    compare_digest = hmac.compare_digest
    programme_ids = [programme_id] if programme_id else list(session.execute(
        sa.select(Programme.id).order_by(Programme.id)).scalars())
    problems: list[str] = []
    total = 0
    connection = session.connection()
    streamed = connection.dialect.supports_server_side_cursors
    typed_fields = [getattr(LedgerEntry, f) for f in _FIELDS]

    def python_text(entry_id: int) -> str:
        values = session.execute(sa.select(*typed_fields).where(LedgerEntry.id == entry_id)).one()
        return "|" + "|".join(_text(v) for v in values)

    text_columns, text_of = _fields_text(connection.dialect.name, python_text)

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
                sa.select(LedgerEntry.mac).where(LedgerEntry.programme_id == pid,
                                                 LedgerEntry.seq == start.head_seq)).scalar()
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
        result = connection.execute(
            sa.select(LedgerEntry.seq, LedgerEntry.id, LedgerEntry.prev_mac, LedgerEntry.mac,
                      *text_columns)
            .where(LedgerEntry.programme_id == pid, LedgerEntry.seq >= first_seq)
            .order_by(LedgerEntry.seq)
            .execution_options(stream_results=streamed, max_row_buffer=batch))
        for rows in result.partitions(batch):
            for row in rows:
                seq, entry_id, prev_mac, stored_mac = row[0], row[1], row[2], row[3]
                if seq != expected_seq:
                    kind = "supprimée" if seq > expected_seq else "insérée ou dupliquée"
                    problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : rupture de "
                               f"séquence (attendu n° {expected_seq}, écriture {kind})")
                    break
                if prev_mac != prev:
                    problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : chaînage "
                               "rompu (écriture déplacée, insérée ou supprimée avant elle)")
                    break
                inner = inner_copy()                    # mac = _mac(key, prev, values)
                inner.update((prev + text_of(row[4:], entry_id)).encode())
                outer = outer_copy()
                outer.update(inner.digest())
                mac = outer.hexdigest()
                if not compare_digest(mac, stored_mac):
                    problem = (f"programme {pid}, écriture n° {seq} (id {entry_id}) : contenu "
                               "modifié (sceau HMAC invalide)")
                    break
                if seq in wanted:
                    macs_at[seq] = mac
                prev = mac
                expected_seq += 1
            if problem:
                break
        result.close()
        if problem:
            problems.append(problem)
            total += session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)
                                     .where(LedgerEntry.programme_id == pid)).scalar()
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
    return VerifyReport(ok=not problems, entries=total, problems=problems,
                        started_from=started_from)


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
                               .where(*where)).scalar())
