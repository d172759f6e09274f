"""Scans (consumption of pass by opérateurs), idempotency keys and anomalies."""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Channel(str, enum.Enum):
    CAMERA = "camera"
    DOUCHETTE = "douchette"
    SAISIE = "saisie"
    PHOTO = "photo"
    PAGE_PASS = "page_pass"
    API = "api"
    HORS_LIGNE = "hors_ligne"


class Scan(Base):
    """One consumption of one pass by one opérateur. A partial unique index
    allows one live (not cancelled) scan per pass, so an undone scan can be
    redone (same SQL on SQLite and PostgreSQL)."""

    __tablename__ = "scans"
    __table_args__ = (
        sa.Index("uq_scans_live_pass", "pass_id", unique=True,
                 sqlite_where=sa.text("cancelled_at IS NULL"),
                 postgresql_where=sa.text("cancelled_at IS NULL")),
        sa.Index("ix_scans_structure_scanned", "structure_id", "scanned_at"),
        sa.Index("ix_scans_carnet_scanned", "carnet_id", "scanned_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pass_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("passes.id"))
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    carnet_id: Mapped[int] = mapped_column(sa.ForeignKey("carnets.id"))
    serial: Mapped[str] = mapped_column(sa.String(24))
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    service_id: Mapped[int | None] = mapped_column(sa.ForeignKey("operateur_services.id"))
    service_name: Mapped[str] = mapped_column(sa.String(200), default="")
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    api_token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_tokens.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "scan_channel"))
    amount_cents: Mapped[int] = mapped_column(default=0)
    previous_holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    # When the service was delivered (the phone's clock for offline scans) and recorded.
    scanned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(sa.String(500), default="")

    structure = relationship("Tenant", foreign_keys=[structure_id])

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.structure_id == tenant.id


class IdempotencyRecord(Base):
    """The first answer given to a client-generated key, replayed on retry."""

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("structure_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    key: Mapped[str] = mapped_column(sa.String(100))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    body: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AnomalyKind(str, enum.Enum):
    DOUBLE_SCAN = "double_scan"
    CARNET_EN_RAFALE = "carnet_en_rafale"
    HORS_PERIMETRE = "hors_perimetre"   # before issue 12; such scans are now refused
    AUTRE_COMMUNE = "autre_commune"

    @property
    def label(self) -> str:
        return {"double_scan": "pass scanné deux fois",
                "carnet_en_rafale": "carnet entier scanné en quelques minutes",
                "hors_perimetre": "scan hors du périmètre du programme",
                "autre_commune": "pass d'une autre commune"}[self.value]


class Anomaly(Base):
    """Something #APTIC should look at (issue 6, point 10)."""

    __tablename__ = "scan_anomalies"
    __table_args__ = (sa.UniqueConstraint("kind", "dedup_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[AnomalyKind] = mapped_column(str_enum(AnomalyKind, "anomaly_kind"))
    dedup_key: Mapped[str] = mapped_column(sa.String(120))
    programme_id: Mapped[int | None] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    structure_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    pass_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("passes.id"))
    serial: Mapped[str] = mapped_column(sa.String(24), default="")
    detail: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    structure = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        """Anomalies are reviewed by #APTIC (mandataire) only."""
        return sa.true() if tenant.kind.value == "mandataire" else sa.false()
