"""Shared test helpers (scenario building through the domain API)."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain import issuance
from portal.domain.ledger import Actor
from portal.models import Programme, Tenant


def tenant(session, slug: str) -> Tenant:
    return session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()


def programme(session, prefix: str) -> Programme:
    return session.execute(sa.select(Programme).where(Programme.prefix == prefix)).scalar_one()


def new_programme(session, prefix: str = "ABC", **settings) -> Programme:
    return issuance.create_programme(session, commanditaire=tenant(session, "mgp"),
                                     issuer=tenant(session, "aptic"), name=f"Programme {prefix}",
                                     prefix=prefix, **settings)


def issued_and_activated(session, prog: Programme, carnets: int):
    aptic = Actor(None, prog.issuer_id)
    order = issuance.order_carnets(session, prog, carnets, actor=aptic)
    issuance.record_payment_reference(session, order, "MANDAT-TEST", actor=Actor(None, prog.commanditaire_id))
    issuance.activate_order(session, order, actor=aptic)
    return order


def drop_ledger_protection(session) -> None:
    """Simulate an attacker with DDL rights: remove the append-only triggers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
        session.execute(sa.text("ALTER TABLE ledger_anchors DISABLE TRIGGER USER"))
        session.execute(sa.text("ALTER TABLE ledger_seals DISABLE TRIGGER USER"))
    else:
        for name in ("ledger_entries_no_update", "ledger_entries_no_delete",
                     "ledger_anchors_no_update", "ledger_anchors_no_delete",
                     "ledger_seals_no_update", "ledger_seals_no_delete"):
            session.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))


def next_totp_code(app, email: str) -> str:
    """The code an administrator's authenticator app shows now, for a step
    not used yet (waits when every code of the window was already used).
    The current step, not an older one the window still accepts: that one
    may expire between being typed and being checked."""
    import time

    from portal.auth import totp
    from portal.domain import accounts
    from portal.extensions import db
    from portal.security import twofactor
    with app.app_context():
        cred = twofactor.credential(db.session, accounts.find_user(db.session, email))
        secret, last = cred.secret, cred.last_step
        db.session.remove()
    while last is not None and totp.step_at() + totp.WINDOW <= last:
        time.sleep(1)
    return totp.hotp(secret, max(totp.step_at(), (last or 0) + 1))
