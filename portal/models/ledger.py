"""The custody ledger: append-only, HMAC-chained, anchored monthly.

The database itself refuses UPDATE and DELETE on ``ledger_entries`` and
``ledger_anchors`` (triggers created by migration 0002).
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UtcDateTime, str_enum, utcnow
from portal.models.issuance import PassState

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Nature(str, enum.Enum):
    """Nature of a movement: the accounts list operations by nature, without netting."""
    EMISSION = "emission"
    ACTIVATION = "activation"
    LIVRAISON = "livraison"
    REPARTITION = "repartition"
    REPRISE = "reprise"                  # référent takes carnets back from a structure
    DISTRIBUTION = "distribution"
    SCAN = "scan"
    ANNULATION_SCAN = "annulation_scan"  # undo of a scan made by mistake
    CONTRE_PAIEMENT = "contre_paiement"
    PAIEMENT = "paiement"
    BLOCAGE = "blocage"                  # opposition: lost or stolen
    ANNULATION = "annulation"
    RESTITUTION = "restitution"
    EXPIRATION = "expiration"            # unused at end of validity: credit note (avoir)
    # Issue 17. A returned transfer re-opens a paid statement: its pass go back
    # from PAYE to CONTRE_PAIEMENT.
    RETOUR_PAIEMENT = "retour_paiement"
    # Movements of the mandate's funds (no pass move: count 0, amount in cents).
    AVANCE = "avance"                    # advance received from the Métropole
    VIREMENT = "virement"                # credit transfer ordered to an opérateur
    RETOUR_VIREMENT = "retour_virement"  # transfer returned by the bank

    @property
    def label(self) -> str:
        return NATURE_LABELS[self]


NATURE_LABELS = {
    Nature.EMISSION: "émission",
    Nature.ACTIVATION: "activation",
    Nature.LIVRAISON: "livraison",
    Nature.REPARTITION: "répartition",
    Nature.REPRISE: "reprise",
    Nature.DISTRIBUTION: "distribution",
    Nature.SCAN: "scan",
    Nature.ANNULATION_SCAN: "annulation de scan",
    Nature.CONTRE_PAIEMENT: "mise en contre-paiement",
    Nature.PAIEMENT: "paiement",
    Nature.BLOCAGE: "blocage",
    Nature.ANNULATION: "annulation",
    Nature.RESTITUTION: "restitution",
    Nature.EXPIRATION: "expiration (avoir)",
    Nature.RETOUR_PAIEMENT: "paiement retourné",
    Nature.AVANCE: "avance reçue",
    Nature.VIREMENT: "virement émis",
    Nature.RETOUR_VIREMENT: "virement retourné",
}

# Natures that move money, not pass (issue 17): kept out of the pass rollups
# and of the reddition's pass operations; the funds section shows them.
FUND_NATURES = frozenset({Nature.AVANCE, Nature.VIREMENT, Nature.RETOUR_VIREMENT})


class LedgerEntry(Base):
    """One movement of a contiguous run of pass (by id) from one position
    (state, holder) to another, written in the transaction of the movement
    with its own ``entry_mac`` = HMAC(key, fields) and no lock. Its place in
    the programme's chain (``seq``, ``prev_mac``, ``mac``) is written later,
    in order, by the sealer: ``LedgerSeal`` (issue 18)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.Index("ix_ledger_entries_programme_pass", "programme_id", "pass_first_id"),
        sa.Index("ix_ledger_entries_programme_created", "programme_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    nature: Mapped[Nature] = mapped_column(str_enum(Nature, "ledger_nature"))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    from_state: Mapped[PassState | None] = mapped_column(str_enum(PassState, "ledger_from_state"))
    from_holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    to_state: Mapped[PassState] = mapped_column(str_enum(PassState, "ledger_to_state"))
    to_holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    # The commune the pass belong to (after a livraison, before a restitution):
    # the accounts are rendered per commune.
    commune_id: Mapped[int | None] = mapped_column()   # no FK: see migration 0003
    pass_first_id: Mapped[int] = mapped_column(BigId)
    pass_last_id: Mapped[int] = mapped_column(BigId)
    serial_first: Mapped[str] = mapped_column(sa.String(24))
    serial_last: Mapped[str] = mapped_column(sa.String(24))
    count: Mapped[int]
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    ref_type: Mapped[str] = mapped_column(sa.String(40), default="")
    ref_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    # HMAC(key, "entry" | fields) computed when the entry is written; NULL for
    # entries sealed inline before migration 0014 (their seal covers them).
    entry_mac: Mapped[str | None] = mapped_column(sa.String(64))


class LedgerSeal(Base):
    """An entry's place in its programme's HMAC chain, written by the sealer
    in batches: ``mac`` = HMAC(key, prev_mac | the entry's fields with
    ``seq``). Append-only like the entries (triggers of migration 0014); one
    seal per entry (UNIQUE ``entry_id``), one entry per place (primary key)."""

    __tablename__ = "ledger_seals"

    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("ledger_entries.id"), unique=True)
    prev_mac: Mapped[str] = mapped_column(sa.String(64))
    mac: Mapped[str] = mapped_column(sa.String(64))
    sealed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class LedgerUnsealed(Base):
    """Entries waiting for their seal. Filled by a database trigger on every
    INSERT into ``ledger_entries`` (migration 0014), emptied by the sealer in
    the transaction that writes the seals; ``queued_at``: the database's
    clock, in seconds since 1970, when the entry was written."""

    __tablename__ = "ledger_unsealed"
    __table_args__ = (sa.Index("ix_ledger_unsealed_programme_entry", "programme_id", "entry_id"),)

    entry_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    programme_id: Mapped[int]
    queued_at: Mapped[float]


class LedgerHead(Base):
    """The head of each sealed chain; the sealer locks the row while it
    seals a batch (and a few business rules use it as the programme's lock)."""

    __tablename__ = "ledger_heads"

    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    mac: Mapped[str] = mapped_column(sa.String(64))


class LedgerAnchor(Base):
    """Monthly closing record: stores the chain head so that a truncated
    tail or a rewritten chain is detected (append-only too)."""

    __tablename__ = "ledger_anchors"
    __table_args__ = (sa.UniqueConstraint("programme_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    period: Mapped[str] = mapped_column(sa.String(7))        # "2021-03"
    head_seq: Mapped[int] = mapped_column(sa.BigInteger)
    head_mac: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    mac: Mapped[str] = mapped_column(sa.String(64))
