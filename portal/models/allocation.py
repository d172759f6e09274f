"""Conventions, Hub opinions, tranches (amorçage, abondement), shipments,
sanctions: the objects of the MGP–commune convention (seed 000)."""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow
from portal.models.issuance import Programme


class Convention(Base):
    """The convention between the commanditaire and one commune for one programme."""

    __tablename__ = "conventions"
    __table_args__ = (sa.UniqueConstraint("programme_id", "commune_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    commune_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(80), default="")
    delivery_address: Mapped[str] = mapped_column(sa.String(300))      # art. 3: the mairie
    signed_by_commune_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    signed_by_commune_name: Mapped[str] = mapped_column(sa.String(200), default="")
    signed_by_metropole_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    signed_by_metropole_name: Mapped[str] = mapped_column(sa.String(200), default="")
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)                   # art. 2: 31/10/2021
    referent_name: Mapped[str] = mapped_column(sa.String(200), default="")
    referent_email: Mapped[str] = mapped_column(sa.String(254), default="")
    referent_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    referent_designated_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    abondements_suspended: Mapped[bool] = mapped_column(default=False)  # art. 11
    abondement_size_override: Mapped[int | None] = mapped_column()      # art. 11: reduction
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    programme: Mapped[Programme] = relationship()
    commune = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        """The commune sees its conventions; the commanditaire and the issuer
        of the programme see all of theirs; the Hub sees those of programmes
        whose commanditaire it accompanies (every programme here)."""
        from portal.domain.permissions import TenantKind
        if tenant.kind is TenantKind.COMMUNE:
            return cls.commune_id == tenant.id
        if tenant.kind is TenantKind.HUB:
            return sa.true()
        return cls.programme_id.in_(sa.select(Programme.id).where(Programme.tenant_clause(tenant)))


class ConventionEvent(Base):
    """History of a convention: référent changes (art. 7), avenants (art. 2, 12)."""

    __tablename__ = "convention_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    convention_id: Mapped[int] = mapped_column(sa.ForeignKey("conventions.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))      # referent | avenant | signature
    summary: Mapped[str] = mapped_column(sa.String(1000))
    effective_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class OpinionKind(str, enum.Enum):
    RESEAU = "reseau"        # network of prescripteurs and opérateurs (art. 4, 3rd condition)
    CAPACITE = "capacite"    # capacity of the actors, after trainings (art. 4, 4th condition)

    @property
    def label(self) -> str:
        return {"reseau": "Avis sur le réseau d'acteurs",
                "capacite": "Avis sur la capacité des acteurs (formations)"}[self.value]


class HubOpinion(Base):
    """An opinion of Hub Francil'IN on a commune's network (art. 4). The last
    opinion of each kind is the one that counts."""

    __tablename__ = "hub_opinions"

    id: Mapped[int] = mapped_column(primary_key=True)
    convention_id: Mapped[int] = mapped_column(sa.ForeignKey("conventions.id"), index=True)
    hub_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    kind: Mapped[OpinionKind] = mapped_column(str_enum(OpinionKind, "opinion_kind"))
    favourable: Mapped[bool]
    given_on: Mapped[dt.date] = mapped_column(sa.Date)
    evidence: Mapped[str] = mapped_column(sa.String(1000))
    given_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    given_by = relationship("User")


class TrancheKind(str, enum.Enum):
    AMORCAGE = "amorcage"
    ABONDEMENT = "abondement"

    @property
    def label(self) -> str:
        return {"amorcage": "amorçage", "abondement": "abondement"}[self.value]


class TrancheStatus(str, enum.Enum):
    DEMANDEE = "demandee"      # amorçage requested by the référent
    CONFIRMEE = "confirmee"    # confirmed by MGP: the delivery clock runs
    EXPEDIEE = "expediee"      # shipped by #APTIC
    RECUE = "recue"            # reception confirmed by the référent
    REFUSEE = "refusee"

    @property
    def label(self) -> str:
        return {"demandee": "demandée", "confirmee": "confirmée", "expediee": "expédiée",
                "recue": "reçue", "refusee": "refusée"}[self.value]


class Tranche(Base):
    __tablename__ = "tranches"

    id: Mapped[int] = mapped_column(primary_key=True)
    convention_id: Mapped[int] = mapped_column(sa.ForeignKey("conventions.id"), index=True)
    kind: Mapped[TrancheKind] = mapped_column(str_enum(TrancheKind, "tranche_kind"))
    status: Mapped[TrancheStatus] = mapped_column(str_enum(TrancheStatus, "tranche_status"))
    quantity: Mapped[int]
    requested_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    confirmed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    due_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    shipped_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    shipped_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    received_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    received_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    received_quantity: Mapped[int | None] = mapped_column()
    discrepancy_note: Mapped[str] = mapped_column(sa.String(1000), default="")
    refusal_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    convention: Mapped[Convention] = relationship()
    shipments: Mapped[list[Shipment]] = relationship(back_populates="tranche",
                                                     order_by="Shipment.first_carnet")

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.convention_id.in_(sa.select(Convention.id).where(
            Convention.tenant_clause(tenant)))

    @property
    def discrepancy(self) -> int:
        if self.received_quantity is None:
            return 0
        return self.received_quantity - self.quantity

    def is_late(self, today: dt.date) -> bool:
        return (self.due_on is not None and self.status in
                (TrancheStatus.CONFIRMEE, TrancheStatus.EXPEDIEE) and today > self.due_on)


class Shipment(Base):
    """A range of carnets sent by #APTIC for a tranche; ``missing`` when the
    référent reported them not received."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    tranche_id: Mapped[int] = mapped_column(sa.ForeignKey("tranches.id"), index=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    first_carnet: Mapped[int]
    last_carnet: Mapped[int]
    missing: Mapped[bool] = mapped_column(default=False)

    tranche: Mapped[Tranche] = relationship(back_populates="shipments")

    @property
    def carnet_count(self) -> int:
        return self.last_carnet - self.first_carnet + 1


class SanctionKind(str, enum.Enum):
    RESTITUTION = "restitution"
    SUSPENSION = "suspension"
    LEVEE_SUSPENSION = "levee_suspension"
    REDUCTION = "reduction"

    @property
    def label(self) -> str:
        return {"restitution": "restitution de pass non distribués",
                "suspension": "suspension des abondements",
                "levee_suspension": "levée de la suspension",
                "reduction": "diminution des abondements"}[self.value]


class Sanction(Base):
    """A decision of the Métropole under convention art. 11, always with a reason."""

    __tablename__ = "sanctions"

    id: Mapped[int] = mapped_column(primary_key=True)
    convention_id: Mapped[int] = mapped_column(sa.ForeignKey("conventions.id"), index=True)
    kind: Mapped[SanctionKind] = mapped_column(str_enum(SanctionKind, "sanction_kind"))
    quantity: Mapped[int | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(1000))
    decided_on: Mapped[dt.date] = mapped_column(sa.Date)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
