"""Programmes, orders, carnets and pass (the objects of the issuance issue).

A pass's ``state`` and ``holder_id`` are written only by
``portal.domain.custody`` (a test enforces it).
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow


class PassState(str, enum.Enum):
    """The issuer's vocabulary (DOMAIN.md, #APTIC help centre)."""
    EMIS = "emis"                    # printed / created, valid nowhere
    ACTIVE = "active"                # activated after the payment reference: in the métropole's stock
    LIVRE = "livre"                  # delivered to a commune
    REPARTI = "reparti"              # split to a prescripteur structure (art. 7)
    DISTRIBUE = "distribue"          # handed to a beneficiary ("injecté", art. 8)
    SCANNE = "scanne"                # scanned by an opérateur
    CONTRE_PAIEMENT = "contre_paiement"  # in a validated monthly statement ("consommé", art. 5)
    PAYE = "paye"                    # paid to the opérateur
    BLOQUE = "bloque"                # opposition (lost, stolen) or end-of-validity blocking
    ANNULE = "annule"                # cancelled by the issuer
    RESTITUE = "restitue"            # given back to the métropole (art. 11), awaiting reuse
    EXPIRE = "expire"                # unused at end of validity; credited (avoir)

    @property
    def label(self) -> str:
        return PASS_STATE_LABELS[self]


PASS_STATE_LABELS = {
    PassState.EMIS: "émis",
    PassState.ACTIVE: "activé",
    PassState.LIVRE: "livré",
    PassState.REPARTI: "réparti",
    PassState.DISTRIBUE: "distribué",
    PassState.SCANNE: "scanné",
    PassState.CONTRE_PAIEMENT: "mis en contre-paiement",
    PassState.PAYE: "payé",
    PassState.BLOQUE: "bloqué",
    PassState.ANNULE: "annulé",
    PassState.RESTITUE: "restitué",
    PassState.EXPIRE: "expiré",
}


class Programme(Base):
    """A dispositif of a commanditaire, with every setting of its convention."""

    __tablename__ = "programmes"

    id: Mapped[int] = mapped_column(primary_key=True)
    commanditaire_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    issuer_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Serial prefix printed on every pass (portal.domain.serials), fixed once pass exist.
    prefix: Mapped[str] = mapped_column(sa.String(6), unique=True)
    face_value_cents: Mapped[int] = mapped_column(default=1000)
    pass_per_carnet: Mapped[int] = mapped_column(default=10)
    total_stock: Mapped[int] = mapped_column(default=155_000)
    valid_until: Mapped[dt.date] = mapped_column(sa.Date)
    tolerance_until: Mapped[dt.date] = mapped_column(sa.Date)
    target_publics: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Allocation settings (convention art. 3–6; AMI 1 defaults).
    amorcage_size: Mapped[int] = mapped_column(default=5_000)
    abondement_size: Mapped[int] = mapped_column(default=2_500)
    abondement_threshold_pct: Mapped[int] = mapped_column(default=50)
    request_window_start: Mapped[dt.date] = mapped_column(sa.Date)
    request_window_end: Mapped[dt.date] = mapped_column(sa.Date)  # exclusive: "à compter du"
    delivery_working_days: Mapped[int] = mapped_column(default=20)
    convention_ends_on: Mapped[dt.date] = mapped_column(sa.Date, default=dt.date(2021, 10, 31))
    partial_last_tranche: Mapped[bool] = mapped_column(default=True)
    allow_partial_carnet: Mapped[bool] = mapped_column(default=False)
    # Jours ouvrés calendar (portal.domain.calendar): "57"/"6AE" for Alsace-Moselle.
    holiday_subdivision: Mapped[str] = mapped_column(sa.String(3), default="")
    pentecost_worked: Mapped[bool] = mapped_column(default=False)
    # Follow-up (art. 9): written retour d'expérience due by this date.
    experience_due_on: Mapped[dt.date] = mapped_column(
        sa.Date, default=dt.date(2021, 9, 1), server_default="2021-09-01")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # End of validity (issue 6; issuer's timeline, portal.domain.validity).
    blocking_proposed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    blocking_proposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    distribution_blocked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    distribution_blocked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cost_acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cost_acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    commanditaire = relationship("Tenant", foreign_keys=[commanditaire_id])
    issuer = relationship("Tenant", foreign_keys=[issuer_id])
    perimeter: Mapped[list[ProgrammePerimeter]] = relationship(
        back_populates="programme", cascade="all, delete-orphan")

    @classmethod
    def tenant_clause(cls, tenant):
        """The commanditaire and the issuer see their programmes."""
        return sa.or_(cls.commanditaire_id == tenant.id, cls.issuer_id == tenant.id)


class ProgrammePerimeter(Base):
    """A commune (all its places) or one structure where the programme's pass are accepted."""

    __tablename__ = "programme_perimeter"
    __table_args__ = (sa.UniqueConstraint("programme_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)

    programme: Mapped[Programme] = relationship(back_populates="perimeter")
    tenant = relationship("Tenant")


class PassOrder(Base):
    """An order of carnets from the issuer for a programme.

    Its pass are valid nowhere until activated, which needs the
    commanditaire's payment reference (numéro de mandat)."""

    __tablename__ = "pass_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    carnet_count: Mapped[int]
    first_carnet_number: Mapped[int]
    last_carnet_number: Mapped[int]
    key_id: Mapped[str] = mapped_column(sa.String(2))
    ordered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    ordered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    payment_reference: Mapped[str | None] = mapped_column(sa.String(60))
    payment_recorded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    payment_recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    activated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    activated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    programme: Mapped[Programme] = relationship()

    @property
    def pass_count(self) -> int:
        return self.carnet_count * self.programme.pass_per_carnet

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.programme_id.in_(
            sa.select(Programme.id).where(Programme.tenant_clause(tenant)))


class Carnet(Base):
    __tablename__ = "carnets"
    __table_args__ = (sa.UniqueConstraint("programme_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("pass_orders.id"), index=True)
    number: Mapped[int]

    programme: Mapped[Programme] = relationship()


class Pass(Base):
    """One voucher. Its verification code and QR tag are MACs computed from
    keys held outside the database (``portal.domain.serials``)."""

    __tablename__ = "passes"
    __table_args__ = (
        sa.UniqueConstraint("carnet_id", "index_in_carnet"),
        sa.Index("ix_passes_programme_state_holder", "programme_id", "state", "holder_id"),
        sa.Index("ix_passes_programme_commune_state", "programme_id", "commune_id", "state"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    carnet_id: Mapped[int] = mapped_column(sa.ForeignKey("carnets.id"), index=True)
    index_in_carnet: Mapped[int]
    serial: Mapped[str] = mapped_column(sa.String(24), unique=True)
    key_id: Mapped[str] = mapped_column(sa.String(2))
    state: Mapped[PassState] = mapped_column(str_enum(PassState, "pass_state"))
    holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    # The commune the pass was delivered to (set by a livraison, cleared by a
    # restitution): "held" and "consumed" of convention art. 5 count by it.
    commune_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    # The agent who handed it to its beneficiary (convention art. 8), written
    # by custody with the DISTRIBUTION entry: a scan reads it with the pass
    # instead of searching the ledger (issue 18).
    handed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    programme: Mapped[Programme] = relationship()
    carnet: Mapped[Carnet] = relationship()
    holder = relationship("Tenant", foreign_keys=[holder_id])


class PrintJobStatus(str, enum.Enum):
    EN_ATTENTE = "en_attente"
    EN_COURS = "en_cours"
    TERMINE = "termine"
    ECHEC = "echec"

    @property
    def label(self) -> str:
        return {"en_attente": "en attente", "en_cours": "en cours", "termine": "terminé",
                "echec": "échec"}[self.value]


class PrintJob(Base):
    """A PDF of carnets being printed in the background (progress shown in the page)."""

    __tablename__ = "print_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    first_carnet: Mapped[int]
    last_carnet: Mapped[int]
    commune_name: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[PrintJobStatus] = mapped_column(str_enum(PrintJobStatus, "print_job_status"),
                                                   default=PrintJobStatus.EN_ATTENTE)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Written by the worker with each progress step: a job « en cours » whose
    # heartbeat is older than JOB_STALE_SECONDS lost its worker (printing.jobs.reap_stale).
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    programme: Mapped[Programme] = relationship()

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.issuer_id == tenant.id

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0
