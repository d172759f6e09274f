"""All models, imported here so that Alembic sees the whole metadata."""
from portal.models.base import Base, UtcDateTime, utcnow  # noqa: F401
from portal.models.tenancy import AuthSession, Membership, Tenant, User  # noqa: F401
from portal.models.issuance import (  # noqa: F401
    Carnet, Pass, PassOrder, PassState, PrintJob, PrintJobStatus, Programme, ProgrammePerimeter)
from portal.models.ledger import LedgerAnchor, LedgerEntry, LedgerHead, LedgerSeal, LedgerUnsealed, Nature  # noqa: F401
from portal.models.allocation import (  # noqa: F401
    Convention, ConventionEvent, HubOpinion, OpinionKind, Sanction, SanctionKind, Shipment,
    Tranche, TrancheKind, TrancheStatus)
from portal.models.mandate import (  # noqa: F401
    Beneficiary, Distribution, Habilitation, HabilitationRequest, Mandate, MandateStatus,
    QuestionnaireAnswer, RedditionClosure, RequestStatus)
from portal.models.operateurs import (  # noqa: F401
    ApiToken, BankDetails, OperateurProfile, OperateurService, Qualification, QualificationEvent,
    ReviewStatus)
from portal.models.scanning import (  # noqa: F401
    Anomaly, AnomalyKind, Channel, IdempotencyRecord, Scan)
from portal.models.settlement import (  # noqa: F401
    CreditNote, Statement, StatementLine, StatementStatus)
from portal.models.reporting import (  # noqa: F401
    ExperienceReport, ExperienceStatus, Facilitateur, FlowCount, FollowUpMeeting, MonthlyReport,
    PositionCount, Training)
from portal.models.security import RecoveryCode, TotpCredential  # noqa: F401
from portal.models.duties import DutyRun  # noqa: F401
from portal.models.exports import ExportJob  # noqa: F401
from portal.models.accounts import Invitation, JournalEntry  # noqa: F401
from portal.models.onboarding import (  # noqa: F401
    COLLECTIVITE_LABELS, Candidature, Collectivite, CommanditaireProfile, LieuMediation)
from portal.models.funds import (  # noqa: F401
    BankImport, BankLine, BankOutcome, FundAdvance, FundCall, LineStatus, PaymentLine, PaymentRun,
    RunStatus)
