"""Convention de mandat (délibération 2022), habilitations of commune agents,
distributions to beneficiaries, reddition des comptes closures."""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class MandateStatus(str, enum.Enum):
    BROUILLON = "brouillon"
    SIGNE = "signe"
    TERMINE = "termine"


class Mandate(Base):
    """#APTIC acts "au nom et pour le compte" of the Métropole (CGCT L1611-7)."""

    __tablename__ = "mandates"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    mandataire_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(80))
    accord_cadre_reference: Mapped[str] = mapped_column(sa.String(80))
    accord_cadre_ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    scope_distribution: Mapped[bool] = mapped_column(default=True)
    scope_contre_paiement: Mapped[bool] = mapped_column(default=True)
    advance_ceiling_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    fee_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # The mandate's bank account, debtor of the SEPA payment runs (issue 17).
    account_holder: Mapped[str] = mapped_column(sa.String(140), default="", server_default="")
    account_iban: Mapped[str] = mapped_column(sa.String(34), default="", server_default="")
    account_bic: Mapped[str] = mapped_column(sa.String(11), default="", server_default="")
    accountant_consulted_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    status: Mapped[MandateStatus] = mapped_column(str_enum(MandateStatus, "mandate_status"),
                                                  default=MandateStatus.BROUILLON)
    signed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    ended_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    end_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    mandant = relationship("Tenant", foreign_keys=[mandant_id])
    mandataire = relationship("Tenant", foreign_keys=[mandataire_id])

    @classmethod
    def tenant_clause(cls, tenant):
        return sa.or_(cls.mandant_id == tenant.id, cls.mandataire_id == tenant.id)


class Habilitation(Base):
    """A named commune agent entrusted by #APTIC with prescription for one
    structure, for a period, under a mandate. Validity is computed when read."""

    __tablename__ = "habilitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The date the revocation states (information) and the moment it takes
    # effect: a distribution before ``revoked_at`` stays valid, one at or
    # after it is refused (issue 14, items 2 and 3).
    revoked_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revocation_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    mandate: Mapped[Mandate] = relationship()
    user = relationship("User", foreign_keys=[user_id])
    structure = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        from portal.domain.permissions import TenantKind
        from portal.models.tenancy import Tenant
        if tenant.kind is TenantKind.COMMUNE:
            return cls.structure_id.in_(sa.select(Tenant.id).where(Tenant.parent_id == tenant.id))
        if tenant.kind is TenantKind.STRUCTURE:
            return cls.structure_id == tenant.id
        return cls.mandate_id.in_(sa.select(Mandate.id).where(Mandate.tenant_clause(tenant)))


class RequestStatus(str, enum.Enum):
    EN_ATTENTE = "en_attente"
    ACCORDEE = "accordee"
    REFUSEE = "refusee"

    @property
    def label(self) -> str:
        return {"en_attente": "en attente", "accordee": "accordée", "refusee": "refusée"}[self.value]


class HabilitationRequest(Base):
    """A référent asks #APTIC to habilitate an agent of the commune."""

    __tablename__ = "habilitation_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "request_status"),
                                                  default=RequestStatus.EN_ATTENTE)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    habilitation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("habilitations.id"))

    user = relationship("User", foreign_keys=[user_id])
    structure = relationship("Tenant", foreign_keys=[structure_id])
    commune = relationship("Tenant", foreign_keys=[commune_id])

    @classmethod
    def tenant_clause(cls, tenant):
        from portal.domain.permissions import TenantKind
        if tenant.kind is TenantKind.COMMUNE:
            return cls.commune_id == tenant.id
        if tenant.kind is TenantKind.MANDATAIRE:
            return sa.true()
        return sa.false()


class Beneficiary(Base):
    """A pseudonymous beneficiary: a code written on the carnet, nothing else.
    No name, birth date, phone, e-mail or address is ever stored."""

    __tablename__ = "beneficiaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Distribution(Base):
    """Pass handed to a beneficiary by a habilitated prescripteur (art. 8)."""

    __tablename__ = "distributions"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    commune_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    habilitation_id: Mapped[int] = mapped_column(sa.ForeignKey("habilitations.id"))
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    beneficiary_id: Mapped[int] = mapped_column(sa.ForeignKey("beneficiaries.id"))
    carnet_id: Mapped[int] = mapped_column(sa.ForeignKey("carnets.id"))
    pass_count: Mapped[int]
    pass_first_id: Mapped[int] = mapped_column(BigId)
    pass_last_id: Mapped[int] = mapped_column(BigId)
    target_public: Mapped[str] = mapped_column(sa.String(40))
    needs: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Unique per desk form: a double click cannot make two distributions.
    request_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    beneficiary: Mapped[Beneficiary] = relationship()
    habilitation: Mapped[Habilitation] = relationship()
    structure = relationship("Tenant", foreign_keys=[structure_id])
    user = relationship("User")
    carnet = relationship("Carnet")

    @classmethod
    def tenant_clause(cls, tenant):
        from portal.domain.permissions import TenantKind
        if tenant.kind is TenantKind.STRUCTURE:
            return cls.structure_id == tenant.id
        if tenant.kind is TenantKind.COMMUNE:
            return cls.commune_id == tenant.id
        return cls.mandate_id.in_(sa.select(Mandate.id).where(Mandate.tenant_clause(tenant)))


class QuestionnaireAnswer(Base):
    """One categorical answer of the evaluation questionnaire (art. 8):
    a question key and an answer key, never free text about the person."""

    __tablename__ = "questionnaire_answers"
    __table_args__ = (sa.UniqueConstraint("distribution_id", "question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    distribution_id: Mapped[int] = mapped_column(sa.ForeignKey("distributions.id"), index=True)
    question: Mapped[str] = mapped_column(sa.String(40))
    answer: Mapped[str] = mapped_column(sa.String(40))


class RedditionClosure(Base):
    """A closed period of accounts: the statement's hash and the ledger heads."""

    __tablename__ = "reddition_closures"
    __table_args__ = (sa.UniqueConstraint("mandate_id", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    period_end: Mapped[dt.date] = mapped_column(sa.Date)
    statement_sha256: Mapped[str] = mapped_column(sa.String(64))
    ledger_heads: Mapped[dict] = mapped_column(sa.JSON)
    closed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
