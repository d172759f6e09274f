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
from collections import defaultdict
from dataclasses import dataclass
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


def lock_head(session: Session, programme_id: int) -> LedgerHead:
    """Lock the chain head for the rest of the transaction (PostgreSQL row
    lock; SQLite transactions are already serialised by BEGIN IMMEDIATE)."""
    head = session.execute(
        sa.select(LedgerHead).where(LedgerHead.programme_id == programme_id)
        .with_for_update()
        .execution_options(populate_existing=True)).scalar_one()
    return head


def append(session: Session, *, programme_id: int, nature: Nature, actor: Actor,
           from_state: PassState | None, from_holder_id: int | None,
           to_state: PassState, to_holder_id: int | None,
           pass_first_id: int, pass_last_id: int, serial_first: str, serial_last: str,
           count: int, amount_cents: int, ref_type: str = "", ref_id: int | None = None,
           reason: str = "", created_at: dt.datetime | None = None,
           head: LedgerHead | None = None, commune_id: int | None = None) -> int:
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
    session.execute(sa.insert(LedgerEntry), [row])
    session.execute(sa.update(LedgerHead).where(LedgerHead.programme_id == programme_id)
                    .values(seq=seq, mac=row["mac"]))
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

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def verify(session: Session, programme_id: int | None = None, *, batch: int = 20_000) -> VerifyReport:
    """Recompute every chain. Reports the first bad entry of each chain:
    edited (MAC differs), deleted/inserted/swapped (seq or link broken),
    truncated tail (head or an anchor points past the last entry), and
    anchors or heads that do not match the entries."""
    key = keys.ledger_key()
    programme_ids = [programme_id] if programme_id else list(session.execute(
        sa.select(Programme.id).order_by(Programme.id)).scalars())
    problems: list[str] = []
    total = 0
    columns = [getattr(LedgerEntry, f) for f in _FIELDS] + [LedgerEntry.id, LedgerEntry.prev_mac,
                                                            LedgerEntry.mac]
    for pid in programme_ids:
        prev = genesis_mac(key, pid)
        expected_seq = 1
        macs_at: dict[int, str] = {}
        anchors = list(session.execute(sa.select(LedgerAnchor).where(
            LedgerAnchor.programme_id == pid).order_by(LedgerAnchor.head_seq)).scalars())
        wanted = {a.head_seq for a in anchors}
        broken = False
        result = session.execute(
            sa.select(*columns).where(LedgerEntry.programme_id == pid)
            .order_by(LedgerEntry.seq).execution_options(yield_per=batch))
        for row in result:
            total += 1
            if broken:
                continue
            values = row[:len(_FIELDS)]
            seq = row.seq
            where = f"programme {pid}, écriture n° {seq} (id {row.id})"
            if seq != expected_seq:
                kind = "supprimée" if seq > expected_seq else "insérée ou dupliquée"
                problems.append(f"{where} : rupture de séquence (attendu n° {expected_seq}, "
                                f"écriture {kind})")
                broken = True
                continue
            if row.prev_mac != prev:
                problems.append(f"{where} : chaînage rompu (écriture déplacée, insérée ou "
                                "supprimée avant elle)")
                broken = True
                continue
            mac = _mac(key, prev, values)
            if not hmac.compare_digest(mac, row.mac):
                problems.append(f"{where} : contenu modifié (sceau HMAC invalide)")
                broken = True
                continue
            if seq in wanted:
                macs_at[seq] = mac
            prev = mac
            expected_seq += 1
        result.close()
        if broken:
            continue
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
        head = session.get(LedgerHead, pid)
        if head is not None and (head.seq != last_seq or head.mac != prev):
            if head.seq > last_seq:
                problems.append(f"programme {pid} : la tête de chaîne mentionne l'écriture "
                                f"n° {head.seq} mais le journal s'arrête au n° {last_seq} "
                                "(fin du journal supprimée)")
            else:
                problems.append(f"programme {pid} : la tête de chaîne ne correspond pas à la "
                                f"dernière écriture (n° {last_seq})")
    return VerifyReport(ok=not problems, entries=total, problems=problems)


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
