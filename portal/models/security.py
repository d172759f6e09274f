"""Second factor of administrators: TOTP secret and recovery codes."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UtcDateTime, utcnow


class TotpCredential(Base):
    """One authenticator app per user. ``confirmed_at`` is NULL while the
    user has not yet typed a first code (enrolment under way)."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(sa.String(64))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Last TOTP step accepted: a code is never accepted twice.
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RecoveryCode(Base):
    """A single-use recovery code, stored hashed (like a password)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(256))
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
