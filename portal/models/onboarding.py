"""Day one (issue 13, part b): commanditaires registered by #APTIC, the public
fields of mediation places (national schema « lieux de médiation numérique »,
ANCT) and the applications of places (« Devenir lieu qualifié »).

Kept apart from ``tenancy`` on purpose: a commanditaire, a lieu and an
application are each one row beside their ``Tenant``.
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow


class Collectivite(str, enum.Enum):
    """What kind of public body a commanditaire is (#APTIC served 80+ of them)."""
    METROPOLE = "metropole"
    DEPARTEMENT = "departement"
    COMMUNE = "commune"
    EPCI = "epci"
    REGION = "region"
    AUTRE = "autre"

    @property
    def label(self) -> str:
        return COLLECTIVITE_LABELS[self]


COLLECTIVITE_LABELS = {
    Collectivite.METROPOLE: "Métropole",
    Collectivite.DEPARTEMENT: "Département",
    Collectivite.COMMUNE: "Commune",
    Collectivite.EPCI: "Communauté de communes ou d'agglomération",
    Collectivite.REGION: "Région",
    Collectivite.AUTRE: "Autre organisme public",
}


class CommanditaireProfile(Base):
    """A commanditaire tenant (kind ``metropole``) and the issuer serving it."""

    __tablename__ = "commanditaire_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), unique=True)
    collectivite: Mapped[Collectivite] = mapped_column(str_enum(Collectivite, "collectivite"))
    siren: Mapped[str | None] = mapped_column(sa.String(9))
    issuer_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    tenant = relationship("Tenant", foreign_keys=[tenant_id])

    @classmethod
    def tenant_clause(cls, tenant):
        """The issuer sees the commanditaires it serves; a commanditaire its own row."""
        return sa.or_(cls.issuer_id == tenant.id, cls.tenant_id == tenant.id)


class LieuMediation(Base):
    """Public fields of a mediation place, named as in the national schema
    (schéma « lieux de médiation numérique » v1.0.2, ANCT / La MedNum)."""

    __tablename__ = "lieux_mediation"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), unique=True)
    services: Mapped[list] = mapped_column(sa.JSON, default=list)
    typologie: Mapped[str] = mapped_column(sa.String(60), default="")
    telephone: Mapped[str] = mapped_column(sa.String(20), default="")
    courriels: Mapped[str] = mapped_column(sa.String(254), default="")
    site_web: Mapped[str] = mapped_column(sa.String(254), default="")
    horaires: Mapped[str] = mapped_column(sa.String(500), default="")
    presentation_resume: Mapped[str] = mapped_column(sa.String(280), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    structure = relationship("Tenant")


class Candidature(Base):
    """A place that applied on « Devenir lieu qualifié ». Its structure waits in
    #APTIC's qualification pipeline, then for its commune's approval; the contact
    is invited as the structure's administrator once both are given."""

    __tablename__ = "lieu_candidatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), unique=True)
    contact_name: Mapped[str] = mapped_column(sa.String(200))
    contact_email: Mapped[str] = mapped_column(sa.String(254))
    contact_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    invited_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    structure = relationship("Tenant")
