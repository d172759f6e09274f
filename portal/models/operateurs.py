"""Opérateur structures: qualification by #APTIC, approval by the commune,
service catalogue, bank details and API tokens (issue 6).

The opérateur itself is a ``Tenant`` of kind structure with ``is_operateur``;
these tables hold what only opérateurs have.
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow


class Qualification(str, enum.Enum):
    """#APTIC's qualification of a "lieu qualifié" (DOMAIN.md, help centre)."""
    EN_ATTENTE = "en_attente"
    QUALIFIE = "qualifie"
    SUSPENDU = "suspendu"
    DEQUALIFIE = "dequalifie"

    @property
    def label(self) -> str:
        return {"en_attente": "en attente", "qualifie": "qualifié", "suspendu": "suspendu",
                "dequalifie": "déqualifié"}[self.value]


class ReviewStatus(str, enum.Enum):
    EN_ATTENTE = "en_attente"
    VALIDE = "valide"
    REFUSE = "refuse"

    @property
    def label(self) -> str:
        return {"en_attente": "en attente de vérification", "valide": "validé",
                "refuse": "refusé"}[self.value]


class OperateurProfile(Base):
    """One row per opérateur structure: current qualification and commune approval."""

    __tablename__ = "operateur_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), unique=True)
    qualification: Mapped[Qualification] = mapped_column(
        str_enum(Qualification, "qualification"), default=Qualification.EN_ATTENTE)
    qualification_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    qualification_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    # Approval by the commune where the structure works (Docaposte platform practice).
    commune_approved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    commune_approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Public opérateurs collect through a régie de recettes: they need an attestation.
    is_public_body: Mapped[bool] = mapped_column(default=False)
    legal_representative: Mapped[str] = mapped_column(sa.String(200), default="")

    structure = relationship("Tenant")

    @property
    def can_scan(self) -> bool:
        return (self.qualification is Qualification.QUALIFIE
                and self.commune_approved_at is not None)


class QualificationEvent(Base):
    """History of qualification decisions (dates and reasons)."""

    __tablename__ = "qualification_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    qualification: Mapped[Qualification] = mapped_column(
        str_enum(Qualification, "qualification_event"))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class OperateurService(Base):
    """A service of the catalogue: price in pass and duration."""

    __tablename__ = "operateur_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    price_pass: Mapped[int] = mapped_column(default=1)
    duration_minutes: Mapped[int] = mapped_column(default=60)
    active: Mapped[bool] = mapped_column(default=True)

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.structure_id == tenant.id


class BankDetails(Base):
    """IBAN/BIC submitted by a structure; each change is reviewed by #APTIC."""

    __tablename__ = "bank_details"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    iban: Mapped[str] = mapped_column(sa.String(34))
    bic: Mapped[str] = mapped_column(sa.String(11))
    status: Mapped[ReviewStatus] = mapped_column(str_enum(ReviewStatus, "bank_review"),
                                                 default=ReviewStatus.EN_ATTENTE)
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    review_reason: Mapped[str] = mapped_column(sa.String(500), default="")

    structure = relationship("Tenant")

    @property
    def masked_iban(self) -> str:
        return f"{self.iban[:4]} **** **** {self.iban[-4:]}"

    @classmethod
    def tenant_clause(cls, tenant):
        """The structure sees its own; #APTIC (mandataire) reviews every one."""
        return sa.true() if tenant.kind.value == "mandataire" else cls.structure_id == tenant.id


class ApiToken(Base):
    """A bearer token of a structure for the JSON API. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hint: Mapped[str] = mapped_column(sa.String(12))          # first characters, for display
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    structure = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.structure_id == tenant.id
