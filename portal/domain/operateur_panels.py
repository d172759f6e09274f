"""Dashboard panels about opérateurs (issue 7, hooks of issue 6), registered
in ``dashboards.MANDATAIRE_PANELS`` and ``dashboards.STRUCTURE_PANELS``.

#APTIC, per programme (builder(session, programme, today) -> Table):

* ``qualification`` — the opérateurs of the programme's territory (structures
  of the communes that have a convention for it) per qualification state
  (DOMAIN.md: #APTIC qualifies the "lieux qualifiés"); a structure without a
  profile yet counts as "en attente";
* ``a-examiner`` — those waiting for #APTIC: qualification en attente or a
  new IBAN to verify ("to a validated IBAN", DOMAIN.md);
* ``releves`` — contre-paiement statements validated and not yet paid that
  carry pass of the programme: amount of the whole statement (what will be
  paid, corrections included) and the programme's share;
* ``anomalies`` — anomalies of the programme not yet reviewed.

The opérateur's own dashboard (builder(session, structure, today) -> Table):

* ``scans-jour`` — live scans (not cancelled) per Paris day of the service,
  the last ``DAYS`` days; ``scans-service`` — live scans per service;
* ``releves`` — its statements and their payment status.

Every builder reads only the rows of its programme or structure, so a
panel never shows another tenant's scans or statements.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import dashboards, operateurs
from portal.domain.permissions import TenantKind
from portal.domain.tables import Column, Table
from portal.formatting import PARIS, format_date
from portal.models import (Anomaly, BankDetails, Convention, LineStatus, OperateurProfile,
                           PaymentLine, Programme, Qualification, ReviewStatus, Scan, Statement,
                           StatementLine, StatementStatus, Tenant)

DAYS = 30


def _paris_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(PARIS).date()


def _paris_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    low = dt.datetime.combine(first, dt.time(), PARIS).astimezone(dt.timezone.utc)
    high = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), PARIS
                               ).astimezone(dt.timezone.utc)
    return low, high


# ---------------------------------------------------------------- #APTIC

def territory_operateurs(session: Session, programme: Programme
                         ) -> list[tuple[Tenant, str, OperateurProfile | None]]:
    """Opérateur structures of the communes with a convention for the
    programme: (structure, commune name, profile or None)."""
    commune = sa.orm.aliased(Tenant)
    return [(s, name, p) for s, name, p in session.execute(
        sa.select(Tenant, commune.name, OperateurProfile)
        .join(commune, commune.id == Tenant.parent_id)
        .join(Convention, sa.and_(Convention.commune_id == commune.id,
                                  Convention.programme_id == programme.id))
        .outerjoin(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
        .where(Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True))
        .order_by(commune.name, Tenant.name))]


def _qualification(profile: OperateurProfile | None) -> Qualification:
    return profile.qualification if profile is not None else Qualification.EN_ATTENTE


def qualification_table(session: Session, programme: Programme, today: dt.date) -> Table:
    counts: dict[Qualification, list[int]] = {q: [0, 0] for q in Qualification}
    for _structure, _commune, profile in territory_operateurs(session, programme):
        line = counts[_qualification(profile)]
        line[0] += 1
        if profile is not None and profile.commune_approved_at is not None:
            line[1] += 1
    rows = [{"state": q.label, "n": n, "approved": approved}
            for q, (n, approved) in counts.items()]
    return Table(f"qualification-{programme.prefix}", "Qualification des opérateurs", [
        Column("state", "Qualification"), Column("n", "Opérateurs", "int"),
        Column("approved", "dont approuvés par leur commune", "int")], rows,
        caption=f"Opérateurs des communes conventionnées par état de qualification — "
                f"{programme.name}",
        footer={"state": "Total", "n": sum(r["n"] for r in rows),
                "approved": sum(r["approved"] for r in rows)},
        chart=("bar", "state", "n"))


def pending_bank_details(session: Session, structure_ids: list[int]) -> set[int]:
    if not structure_ids:
        return set()
    return set(session.execute(sa.select(BankDetails.structure_id).where(
        BankDetails.structure_id.in_(structure_ids),
        BankDetails.status == ReviewStatus.EN_ATTENTE)).scalars())


def awaiting_review_table(session: Session, programme: Programme, today: dt.date) -> Table:
    found = territory_operateurs(session, programme)
    pending_iban = pending_bank_details(session, [s.id for s, _c, _p in found])
    validated = set(session.execute(sa.select(BankDetails.structure_id).where(
        BankDetails.structure_id.in_([s.id for s, _c, _p in found] or [0]),
        BankDetails.status == ReviewStatus.VALIDE)).scalars())
    rows = []
    for structure, commune, profile in found:
        waiting = []
        if _qualification(profile) is Qualification.EN_ATTENTE:
            waiting.append("qualification")
        if structure.id in pending_iban:
            waiting.append("IBAN")
        if not waiting:
            continue
        rows.append({
            "name": structure.name, "commune": commune, "what": ", ".join(waiting),
            "qualification": _qualification(profile).label,
            "since": _paris_day(profile.qualification_changed_at) if profile else None,
            "approved": (format_date(profile.commune_approved_at)
                         if profile is not None and profile.commune_approved_at else "non"),
            "iban": ("à vérifier" if structure.id in pending_iban else
                     "validé" if structure.id in validated else "aucun")})
    return Table(f"operateurs-a-examiner-{programme.prefix}", "Opérateurs à examiner", [
        Column("name", "Opérateur"), Column("commune", "Commune"), Column("what", "À examiner"),
        Column("qualification", "Qualification"), Column("since", "Depuis le", "date"),
        Column("approved", "Approbation de la commune"), Column("iban", "IBAN")], rows,
        caption="Opérateurs en attente de qualification ou d'une vérification d'IBAN")


def statements_to_pay(session: Session, programme: Programme) -> list[dict]:
    """Validated, unpaid statements with at least one line of the programme."""
    share = dict(session.execute(
        sa.select(StatementLine.statement_id, sa.func.sum(StatementLine.amount_cents))
        .join(Statement, Statement.id == StatementLine.statement_id)
        .where(Statement.status == StatementStatus.VALIDE,
               StatementLine.programme_id == programme.id)
        .group_by(StatementLine.statement_id)).tuples().all())
    passes = dict(session.execute(
        sa.select(StatementLine.statement_id, sa.func.count())
        .where(StatementLine.statement_id.in_(list(share) or [0]),
               StatementLine.programme_id == programme.id, StatementLine.scan_id.is_not(None))
        .group_by(StatementLine.statement_id)).tuples().all())
    totals = dict(session.execute(
        sa.select(StatementLine.statement_id, sa.func.sum(StatementLine.amount_cents))
        .where(StatementLine.statement_id.in_(list(share) or [0]))
        .group_by(StatementLine.statement_id)).tuples().all())
    statements = session.execute(
        sa.select(Statement, Tenant.name).join(Tenant, Tenant.id == Statement.structure_id)
        .where(Statement.id.in_(list(share) or [0]))
        .order_by(Statement.period, Tenant.name)).all()
    return [{"id": s.id, "structure_id": s.structure_id, "name": name, "period": s.period,
             "validated_on": _paris_day(s.validated_at) if s.validated_at else None,
             "pass": int(passes.get(s.id, 0)), "total": int(totals.get(s.id, 0)),
             "share": int(share[s.id])} for s, name in statements]


def statements_to_pay_table(session: Session, programme: Programme, today: dt.date) -> Table:
    rows = statements_to_pay(session, programme)
    for row in rows:
        details = operateurs.current_bank_details(session, row["structure_id"])
        row["iban"] = details.masked_iban if details else "aucun IBAN validé"
    return Table(f"releves-a-payer-{programme.prefix}", "Relevés à payer", [
        Column("name", "Opérateur"), Column("period", "Mois"),
        Column("validated_on", "Validé le", "date"), Column("pass", "Pass du programme", "int"),
        Column("share", "Montant du programme", "eur"),
        Column("total", "Montant du relevé", "eur"), Column("iban", "IBAN")], rows,
        caption="Relevés de contre-paiement validés, non encore payés",
        footer={"name": "Total", "pass": sum(r["pass"] for r in rows),
                "share": sum(r["share"] for r in rows), "total": sum(r["total"] for r in rows)})


def anomalies_table(session: Session, programme: Programme, today: dt.date) -> Table:
    rows = session.execute(
        sa.select(Anomaly, Tenant.name).outerjoin(Tenant, Tenant.id == Anomaly.structure_id)
        .where(Anomaly.programme_id == programme.id, Anomaly.reviewed_at.is_(None))
        .order_by(Anomaly.id.desc())).all()
    by_kind: dict[str, int] = defaultdict(int)
    for anomaly, _name in rows:
        by_kind[anomaly.kind.label] += 1
    summary = " ; ".join(f"{label} : {n}" for label, n in sorted(by_kind.items()))
    return Table(f"anomalies-{programme.prefix}", "Anomalies à examiner", [
        Column("at", "Signalée le"), Column("kind", "Anomalie"), Column("name", "Opérateur"),
        Column("serial", "Numéro de pass"), Column("detail", "Détail")],
        [{"at": a.created_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"), "kind": a.kind.label,
          "name": name or "", "serial": a.serial, "detail": a.detail} for a, name in rows],
        caption="Anomalies non examinées" + (f" ({summary})" if summary else ""))


# ---------------------------------------------------------------- opérateur (structure)

def scans_by_day(session: Session, structure: Tenant, first: dt.date, last: dt.date
                 ) -> dict[dt.date, tuple[int, int]]:
    """Live scans of the structure per Paris day of the service: (pass, cents)."""
    low, high = _paris_bounds(first, last)
    result: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for at, cents in session.execute(
            sa.select(Scan.scanned_at, Scan.amount_cents)
            .where(Scan.structure_id == structure.id, Scan.cancelled_at.is_(None),
                   Scan.scanned_at >= low, Scan.scanned_at < high)):
        line = result[_paris_day(at)]
        line[0] += 1
        line[1] += int(cents)
    return {day: (n, cents) for day, (n, cents) in result.items()}


def scans_by_day_table(session: Session, structure: Tenant, today: dt.date) -> Table:
    first = today - dt.timedelta(days=DAYS - 1)
    counts = scans_by_day(session, structure, first, today)
    rows = [{"day": f"{day:%d/%m}", "date": day, "n": counts.get(day, (0, 0))[0],
             "cents": counts.get(day, (0, 0))[1]}
            for day in (first + dt.timedelta(days=i) for i in range(DAYS))]
    return Table(f"scans-par-jour-{structure.slug}", "Scans par jour", [
        Column("date", "Jour", "date"), Column("n", "Pass scannés", "int"),
        Column("cents", "Montant", "eur")], rows,
        caption=f"Pass scannés par jour, du {first:%d/%m/%Y} au {today:%d/%m/%Y}",
        footer={"date": "Total", "n": sum(r["n"] for r in rows),
                "cents": sum(r["cents"] for r in rows)},
        chart=("line", "day", "n"))


def scans_by_service(session: Session, structure: Tenant) -> list[tuple[str, int, int]]:
    return [(name, int(n), int(cents)) for name, n, cents in session.execute(
        sa.select(Scan.service_name, sa.func.count(), sa.func.sum(Scan.amount_cents))
        .where(Scan.structure_id == structure.id, Scan.cancelled_at.is_(None))
        .group_by(Scan.service_name).order_by(sa.func.count().desc(), Scan.service_name))]


def scans_by_service_table(session: Session, structure: Tenant, today: dt.date) -> Table:
    rows = [{"service": name or "(service non précisé)", "n": n, "cents": cents}
            for name, n, cents in scans_by_service(session, structure)]
    return Table(f"scans-par-service-{structure.slug}", "Scans par service", [
        Column("service", "Service"), Column("n", "Pass scannés", "int"),
        Column("cents", "Montant", "eur")], rows,
        caption="Pass scannés par service rendu (scans annulés exclus)",
        footer={"service": "Total", "n": sum(r["n"] for r in rows),
                "cents": sum(r["cents"] for r in rows)},
        chart=("bar", "service", "n"))


PAYMENT_STATUS = {StatementStatus.BROUILLON: "en préparation",
                  StatementStatus.VALIDE: "validé, à payer",
                  StatementStatus.PAYE: "payé"}


def own_statements(session: Session, structure: Tenant) -> list[dict]:
    figures = {sid: (int(lines), int(scans), int(cents or 0)) for sid, lines, scans, cents in
               session.execute(
                   sa.select(StatementLine.statement_id, sa.func.count(),
                             sa.func.count(StatementLine.scan_id),
                             sa.func.sum(StatementLine.amount_cents))
                   .join(Statement, Statement.id == StatementLine.statement_id)
                   .where(Statement.structure_id == structure.id)
                   .group_by(StatementLine.statement_id))}
    # Issue 17: the last returned transfer of a statement still to be paid.
    returned = {sid: (on, reason) for sid, on, reason in session.execute(
        sa.select(PaymentLine.statement_id, PaymentLine.returned_on, PaymentLine.return_reason)
        .where(PaymentLine.structure_id == structure.id,
               PaymentLine.status == LineStatus.RETOURNE).order_by(PaymentLine.attempt))}
    rows = []
    for s in session.execute(sa.select(Statement).where(Statement.structure_id == structure.id)
                             .order_by(Statement.period.desc(), Statement.id)).scalars():
        lines, scans, cents = figures.get(s.id, (0, 0, 0))
        status = PAYMENT_STATUS[s.status]
        if s.status is StatementStatus.PAYE and s.paid_on:
            status = f"payé le {s.paid_on:%d/%m/%Y}"
        elif s.id in returned:
            status = (f"virement retourné le {returned[s.id][0]:%d/%m/%Y} ({returned[s.id][1]}) : "
                      "IBAN à revoir, à payer de nouveau")
        rows.append({"id": s.id, "period": s.period, "status": status, "state": s.status,
                     "lines": lines, "pass": scans, "cents": cents,
                     "validated_on": _paris_day(s.validated_at) if s.validated_at else None,
                     "paid_on": s.paid_on, "reference": s.bank_reference or ""})
    return rows


def own_statements_table(session: Session, structure: Tenant, today: dt.date) -> Table:
    rows = own_statements(session, structure)
    return Table(f"releves-{structure.slug}", "Relevés de contre-paiement", [
        Column("period", "Mois"), Column("status", "État du paiement"),
        Column("pass", "Pass scannés", "int"), Column("lines", "Lignes", "int"),
        Column("cents", "Montant", "eur"), Column("validated_on", "Validé le", "date"),
        Column("paid_on", "Payé le", "date"), Column("reference", "Référence du virement")],
        rows, caption="Relevés mensuels de contre-paiement et leur paiement",
        footer={"period": "Total", "pass": sum(r["pass"] for r in rows),
                "lines": sum(r["lines"] for r in rows), "cents": sum(r["cents"] for r in rows)})


def structure_headline(session: Session, structure: Tenant, today: dt.date) -> dict:
    """The page's figures: scans of the current month, amounts to be paid and paid."""
    month = scans_by_day(session, structure, today.replace(day=1), today)
    statements = own_statements(session, structure)
    return {"month_scans": sum(n for n, _c in month.values()),
            "month_cents": sum(c for _n, c in month.values()),
            "to_pay_cents": sum(r["cents"] for r in statements
                                if r["state"] is StatementStatus.VALIDE),
            "paid_cents": sum(r["cents"] for r in statements
                              if r["state"] is StatementStatus.PAYE)}


dashboards.MANDATAIRE_PANELS.update({
    "qualification": ("Qualification des opérateurs", qualification_table),
    "a-examiner": ("Opérateurs à examiner", awaiting_review_table),
    "releves": ("Relevés à payer", statements_to_pay_table),
    "anomalies": ("Anomalies", anomalies_table),
})
dashboards.STRUCTURE_PANELS.update({
    "scans-jour": ("Scans par jour", scans_by_day_table),
    "scans-service": ("Scans par service", scans_by_service_table),
    "releves": ("Relevés de contre-paiement", own_statements_table),
})
