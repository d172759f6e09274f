"""The scheduled duties: what the scheduler (``flask --app wsgi scheduler``,
RQ's cron) enqueues, and the record of each run (``DutyRun``).

Each duty works on a period (a month ``AAAA-MM`` or a day ``AAAA-MM-JJ``)
and is idempotent twice over: the row UNIQUE (duty, period) lets one run
do the work (a second one enqueued for the same period — two schedulers, a
manual run — finds it done and does nothing), and the work itself is
idempotent (closing, anchoring and the report change nothing the second
time). A failed run is retried by the queue (backoff) and can be run again.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.errors import DomainError
from portal.models import DutyRun, Programme, Tenant, utcnow

log = logging.getLogger("portal.jobs.duties")

# A run « en cours » for longer than this lost its worker: it may be taken over.
RUN_STALE = dt.timedelta(hours=1)


class DutyFailed(Exception):
    """A duty that could not do its work (French message, kept on the run)."""


@dataclass(frozen=True)
class Duty:
    name: str
    label: str
    cron: str               # UTC, croniter syntax (RQ's CronScheduler)
    monthly: bool           # period: the previous month, else today
    work: Callable[[Session, str], str]
    source: str

    def default_period(self, today: dt.date) -> str:
        if self.monthly:
            return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        return today.isoformat()

    def next_run(self, now: dt.datetime) -> dt.datetime:
        from croniter import croniter
        return croniter(self.cron, now.astimezone(dt.timezone.utc)).get_next(dt.datetime)


def _close_month(session: Session, period: str) -> str:
    from portal.domain import settlement
    statements = settlement.close_month(session, period)
    session.commit()
    return f"{len(statements)} relevé(s) créé(s) ou complété(s) pour {period}."


def _anchor_ledger(session: Session, period: str) -> str:
    from portal.domain import ledger
    done, broken = [], []
    ledger.seal(session)              # anchors close sealed entries only (issue 18)
    for programme in session.execute(sa.select(Programme).order_by(Programme.id)).scalars():
        report = ledger.verify(session, programme.id, since_anchor=True)
        if not report.ok:
            broken.append(f"{programme.prefix} : {'; '.join(report.problems[:3])}")
            continue
        record = ledger.anchor(session, programme.id, period)
        done.append(f"{programme.prefix} tête n° {record.head_seq}")
    session.commit()
    if broken:
        raise DutyFailed("Chaîne du journal rompue, non clôturée : " + " | ".join(broken))
    return f"Journal clôturé pour {period} : " + (", ".join(done) or "aucun programme") + "."


def _monthly_report(session: Session, period: str) -> str:
    from portal.reporting import generate_and_notify
    lines = []
    for programme in session.execute(sa.select(Programme).order_by(Programme.id)).scalars():
        report, created = generate_and_notify(programme, period)
        lines.append(f"{programme.prefix} v{report.version} {'créé' if created else 'déjà présent'}")
    return f"Rapports {period} : " + (", ".join(lines) or "aucun programme") + "."


# Days before the end of validity on which the commanditaire is told by e-mail
# (convention art. 10: J-30 alert, J-15 blocking of the distribution).
ALERT_DAYS = (30, 15, 7, 1, 0)


def _validity_alerts(session: Session, day: str) -> str:
    from portal.domain.permissions import Role
    from portal.mail import send_mail
    from portal.models import Membership, User
    today = dt.date.fromisoformat(day)
    sent = 0
    for programme in session.execute(sa.select(Programme).order_by(Programme.id)).scalars():
        left = (programme.valid_until - today).days
        if left not in ALERT_DAYS:
            continue
        commanditaire = session.get(Tenant, programme.commanditaire_id)
        emails = session.execute(
            sa.select(User.email).join(Membership, Membership.user_id == User.id).where(
                Membership.tenant_id == programme.commanditaire_id,
                Membership.role == Role.MGP_ADMIN)).scalars().all()
        for email in emails:
            send_mail(email, f"Pass Numérique : fin de validité de {programme.name} "
                             f"dans {left} jour(s)",
                      f"{commanditaire.name} — {programme.name}\n\nLes pass de ce programme "
                      f"sont valables jusqu'au {programme.valid_until:%d/%m/%Y} (dans {left} "
                      "jour(s)). Consultez votre tableau de bord pour le blocage de la "
                      "distribution et la prise d'acte (convention, art. 10).\n")
            sent += 1
    return f"{sent} alerte(s) de fin de validité envoyée(s) le {day}."


DUTIES: dict[str, Duty] = {d.name: d for d in (
    Duty("close_month", "Clôture du mois (relevés de contre-paiement)", "15 1 1 * *", True,
         _close_month, "flask close-month"),
    Duty("anchor_ledger", "Ancrage mensuel du journal", "45 1 1 * *", True,
         _anchor_ledger, "flask ledger anchor"),
    Duty("monthly_report", "Rapport mensuel aux référents (convention art. 9)", "0 4 1 * *",
         True, _monthly_report, "flask monthly-report"),
    Duty("validity_alerts", "Alertes de fin de validité", "0 6 * * *", False,
         _validity_alerts, "—"),
)}


def _claim(session: Session, name: str, period: str) -> DutyRun | None:
    """The run row for (name, period), claimed by us; None when done or running elsewhere."""
    now = utcnow()
    try:
        with session.begin_nested():
            run = DutyRun(duty=name, period=period, status="en_cours", attempts=1,
                          started_at=now, message="")
            session.add(run)
        session.commit()
        return run
    except sa.exc.IntegrityError:
        session.rollback()
    run = session.execute(sa.select(DutyRun).where(
        DutyRun.duty == name, DutyRun.period == period)).scalar_one()
    if run.status == "termine":
        return None
    if run.status == "en_cours" and run.started_at > now - RUN_STALE:
        return None
    taken = session.execute(
        sa.update(DutyRun).where(DutyRun.id == run.id, DutyRun.status == run.status,
                                 DutyRun.attempts == run.attempts)
        .values(status="en_cours", attempts=run.attempts + 1, started_at=now, message="",
                finished_at=None).execution_options(synchronize_session=False)).rowcount
    session.commit()
    if not taken:
        return None
    session.refresh(run)
    return run


def run(session: Session, name: str, period: str | None = None,
        today: dt.date | None = None) -> str:
    """Do duty ``name`` for ``period`` (default: the period due today), once."""
    duty = DUTIES[name]
    if period is None:
        from portal.web.clock import today as clock_today
        period = duty.default_period(today or clock_today())
    run_row = _claim(session, name, period)
    if run_row is None:
        log.info("duty %s %s already done or running: nothing to do", name, period)
        return "déjà fait"
    run_id = run_row.id
    try:
        message = duty.work(session, period)
    except Exception as error:
        session.rollback()
        text = (error.message if isinstance(error, DomainError)
                else str(error) if isinstance(error, DutyFailed)
                else f"Erreur inattendue ({type(error).__name__}) : voir les journaux.")
        session.execute(sa.update(DutyRun).where(DutyRun.id == run_id).values(
            status="echec", message=text[:2000], finished_at=utcnow()))
        session.commit()
        raise
    session.execute(sa.update(DutyRun).where(DutyRun.id == run_id).values(
        status="termine", message=message[:2000], finished_at=utcnow()))
    session.commit()
    return message


STATUS_LABELS = {"termine": "terminé", "echec": "échec", "en_cours": "en cours"}
# The duties done for the commanditaire (convention art. 9 and 10): shown on its face too,
# without the run messages (they name every programme of every commanditaire).
COMMANDITAIRE_DUTIES = ("monthly_report", "validity_alerts")


@dataclass
class DutyStatus:
    duty: Duty
    last: DutyRun | None
    next_run: dt.datetime


def overview(session: Session, now: dt.datetime | None = None,
             names: tuple[str, ...] | None = None) -> list[DutyStatus]:
    """Each duty (or those named) with its last run (outcome) and next scheduled run."""
    now = now or utcnow()
    rows = []
    for duty in DUTIES.values():
        if names is not None and duty.name not in names:
            continue
        last = session.execute(sa.select(DutyRun).where(DutyRun.duty == duty.name)
                               .order_by(DutyRun.started_at.desc(), DutyRun.id.desc())
                               .limit(1)).scalar_one_or_none()
        rows.append(DutyStatus(duty, last, duty.next_run(now)))
    return rows
