"""Scheduled duties (close the month, anchor the ledger…): one row per duty and period."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UtcDateTime, utcnow


class DutyRun(Base):
    """A duty done (or tried) for one period. UNIQUE (duty, period): a duty
    enqueued twice for the same period (two schedulers, a retry) does its
    work once."""

    __tablename__ = "duty_runs"
    __table_args__ = (sa.UniqueConstraint("duty", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    duty: Mapped[str] = mapped_column(sa.String(40))
    period: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="en_cours")
    message: Mapped[str] = mapped_column(sa.String(2000), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
