"""Second factor (TOTP + recovery codes) for the administrators of the
Métropole, #APTIC and the Hub. No Flask here: the views are in
``portal.auth.twofactor``.

Who: any user holding one of ``ADMIN_ROLES`` in any tenant. Such a user is
signed in only after a valid code; one who has not enrolled yet is taken
through enrolment right after the password and can do nothing else.
"""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from portal.auth import totp
from portal.domain import accounts
from portal.domain.errors import InvalidInput
from portal.domain.permissions import Role
from portal.models import AuthSession, Membership, RecoveryCode, TotpCredential, User, utcnow

ADMIN_ROLES = frozenset({Role.MGP_ADMIN, Role.APTIC_ADMIN, Role.HUB_ADMIN})
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i

WRONG_CODE = "Code incorrect, expiré ou déjà utilisé. Saisissez le code affiché maintenant."


def required(session: Session, user: User) -> bool:
    """Whether this user must pass a second factor (holds an admin role)."""
    return session.execute(
        sa.select(sa.func.count()).select_from(Membership)
        .where(Membership.user_id == user.id, Membership.role.in_(ADMIN_ROLES))
    ).scalar_one() > 0


def credential(session: Session, user: User) -> TotpCredential | None:
    return session.get(TotpCredential, user.id)


def is_enrolled(session: Session, user: User) -> bool:
    cred = credential(session, user)
    return cred is not None and cred.confirmed_at is not None


def start_enrolment(session: Session, user: User) -> TotpCredential:
    """The pending (unconfirmed) credential, created with a new secret if needed."""
    cred = credential(session, user)
    if cred is not None and cred.confirmed_at is not None:
        raise InvalidInput("La double authentification est déjà activée pour ce compte.")
    if cred is None:
        cred = TotpCredential(user_id=user.id, secret=totp.new_secret())
        session.add(cred)
        session.flush()
    return cred


def _consume_step(session: Session, user: User, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) already was.
    A conditional UPDATE, so two concurrent requests cannot both use a code."""
    result = session.execute(
        sa.update(TotpCredential)
        .where(TotpCredential.user_id == user.id,
               sa.or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step))
        .values(last_step=step)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def confirm_enrolment(session: Session, user: User, code: str, *,
                      now: float | None = None) -> list[str]:
    """Check the first code of the app; returns fresh recovery codes (shown once)."""
    cred = start_enrolment(session, user)
    step = totp.verify(cred.secret, code, last_step=cred.last_step, now=now)
    if step is None or not _consume_step(session, user, step):
        raise InvalidInput(WRONG_CODE, field="code")
    cred.confirmed_at = utcnow()
    return new_recovery_codes(session, user)


def enrol_with_secret(session: Session, user: User, secret: str) -> TotpCredential:
    """Enrol with a known secret (demo data only: see README)."""
    cred = credential(session, user) or TotpCredential(user_id=user.id, secret=secret)
    cred.secret = secret
    cred.confirmed_at = utcnow()
    session.add(cred)
    session.flush()
    return cred


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())[:32]


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes; only their hashes are stored."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        session.add(RecoveryCode(
            user_id=user.id,
            code_hash=generate_password_hash(_normalise_recovery(code),
                                             method=accounts.HASH_METHOD)))
    session.flush()
    return codes


def remaining_recovery_codes(session: Session, user: User) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).scalar_one()


def verify(session: Session, user: User, code: str, *, now: float | None = None) -> str:
    """Check a TOTP code or an unused recovery code; returns ``"totp"`` or
    ``"recovery"``, raises ``InvalidInput`` otherwise."""
    cred = credential(session, user)
    if cred is None or cred.confirmed_at is None:
        raise InvalidInput("La double authentification n'est pas activée pour ce compte.")
    cleaned = totp.normalise_code(code)
    if cleaned.isdigit():
        step = totp.verify(cred.secret, cleaned, last_step=cred.last_step, now=now)
        if step is not None and _consume_step(session, user, step):
            return "totp"
        raise InvalidInput(WRONG_CODE, field="code")
    wanted = _normalise_recovery(code)
    if len(wanted) == 10:
        for row in session.execute(sa.select(RecoveryCode).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).scalars():
            if check_password_hash(row.code_hash, wanted):
                used = session.execute(
                    sa.update(RecoveryCode)
                    .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                    .values(used_at=utcnow()).execution_options(synchronize_session=False))
                if used.rowcount == 1:
                    return "recovery"
    raise InvalidInput(WRONG_CODE, field="code")


def reset(session: Session, user: User) -> None:
    """Forget the authenticator and recovery codes (lost phone) and sign the
    user out everywhere: next sign-in goes through enrolment again."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(sa.delete(TotpCredential).where(TotpCredential.user_id == user.id))
    session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user.id))
