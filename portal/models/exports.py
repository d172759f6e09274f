"""Export jobs (issue 16): a large export written in the background."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow
from portal.models.issuance import PrintJobStatus, Programme


class ExportJob(Base):
    """The programme export (every pass with its history) prepared by a
    worker, its progress shown in the page like a print job's. The file
    lives under ``EXPORT_DIR`` and is served to the tenant that asked for it
    until ``expires_at``. ``active_key`` (UNIQUE) is set while the job waits
    or runs and cleared when it ends: the same export asked again meanwhile
    finds the running job instead of starting a second one."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    programme_id: Mapped[int | None] = mapped_column(sa.ForeignKey("programmes.id"))
    fmt: Mapped[str] = mapped_column(sa.String(10))
    filename: Mapped[str] = mapped_column(sa.String(200))
    active_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    status: Mapped[PrintJobStatus] = mapped_column(str_enum(PrintJobStatus, "export_job_status"),
                                                   default=PrintJobStatus.EN_ATTENTE)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.String(500), default="")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    programme: Mapped[Programme | None] = relationship()

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.tenant_id == tenant.id

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now
