"""Monthly contre-paiement of opérateurs (issue 6, point 8).

Sources: DOMAIN.md (#APTIC help centre: "Contre-paiement: monthly, for the
pass scanned the previous month, to a validated IBAN"); convention art. 5
("un Pass consommé est un Pass scanné et mis en contre-paiement": validating
a statement moves its pass to CONTRE_PAIEMENT, nature CONTRE_PAIEMENT;
paying moves them to PAYE, nature PAIEMENT — both through custody);
public accounting practice for mandates (every operation by nature, no
netting: corrections are new lines, validated lines are never edited).
"""
from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import custody, journal, ledger, operateurs, spreadsheet
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.formatting import PARIS, format_datetime, format_eur
from portal.models import (Pass, Programme, Scan, Statement, StatementLine, StatementStatus,
                           Tenant, utcnow)
from portal.models.issuance import PassState
from portal.models.ledger import Nature

# ``ref_type`` of the ledger entries of statement corrections (ref_id = statement).
CORRECTION_REF = "correction_releve"
STATEMENT_REF = "releve"


def parse_period(text: str) -> str:
    try:
        day = dt.datetime.strptime((text or "").strip(), "%Y-%m").date()
    except ValueError:
        raise InvalidInput("Mois attendu au format AAAA-MM.", field="period") from None
    return day.strftime("%Y-%m")


def previous_period(today: dt.date) -> str:
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def period_end(period: str) -> dt.datetime:
    """First instant of the next month, Paris time, in UTC."""
    year, month = map(int, period.split("-"))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return dt.datetime.combine(nxt, dt.time(), PARIS).astimezone(dt.timezone.utc)


def close_month(session: Session, period: str, *, now: dt.datetime | None = None
                ) -> list[Statement]:
    """Build (or complete) one draft statement per opérateur for ``period``
    with every live scan made before the end of that month and not yet on
    a statement (late offline scans land on the next close). Closing twice
    changes nothing: a scan is on at most one line (UNIQUE scan_id)."""
    period = parse_period(period)
    end = period_end(period)
    if (now or utcnow()) < end:
        raise Conflict("Le mois n'est pas terminé : clôture impossible.")
    pending = session.execute(
        sa.select(Scan).outerjoin(StatementLine, StatementLine.scan_id == Scan.id)
        .where(Scan.cancelled_at.is_(None), Scan.scanned_at < end, StatementLine.id.is_(None))
        .order_by(Scan.structure_id, Scan.scanned_at, Scan.id)).scalars().all()
    by_structure: dict[int, list[Scan]] = defaultdict(list)
    for scan in pending:
        by_structure[scan.structure_id].append(scan)
    touched = []
    for structure_id, scans in by_structure.items():
        statement = session.execute(sa.select(Statement).where(
            Statement.structure_id == structure_id, Statement.period == period)
        ).scalar_one_or_none()
        if statement is None:
            statement = Statement(structure_id=structure_id, period=period,
                                  status=StatementStatus.BROUILLON)
            session.add(statement)
            session.flush()
        elif statement.status is not StatementStatus.BROUILLON:
            continue     # validated: its late scans wait for the next month's statement
        for scan in scans:
            session.add(StatementLine(statement_id=statement.id, scan_id=scan.id,
                                      pass_id=scan.pass_id, programme_id=scan.programme_id,
                                      serial=scan.serial, occurred_at=scan.scanned_at,
                                      label=scan.service_name, amount_cents=scan.amount_cents))
        touched.append(statement)
    session.flush()
    for statement in touched:
        session.refresh(statement)
    return touched


def add_correction(session: Session, statement: Statement, *, amount_cents: int, label: str,
                   corrects_line_id: int | None = None, actor: Actor | None = None
                   ) -> StatementLine:
    """A correction is a new line (positive or negative) on a draft."""
    if statement.status is not StatementStatus.BROUILLON:
        raise Conflict("Un relevé validé ne se modifie pas : ajoutez la correction au relevé "
                       "du mois suivant.")
    if not (label or "").strip():
        raise InvalidInput("Indiquez le motif de la correction.", field="label")
    if amount_cents == 0 or abs(amount_cents) > 10_000_000:
        raise InvalidInput("Montant de correction invalide.", field="amount")
    line = StatementLine(statement_id=statement.id, amount_cents=amount_cents,
                         label=label.strip()[:300], corrects_line_id=corrects_line_id,
                         occurred_at=utcnow())
    session.add(line)
    session.flush()
    journal.record(session, action="statement.corrected", actor=actor,
                   tenant_id=statement.structure_id, target="relevé", target_id=statement.id,
                   after={"montant (centimes)": amount_cents, "motif": label.strip()[:300]})
    session.refresh(statement)
    return line


def _move_lines(session: Session, statement: Statement, nature: Nature, actor: Actor) -> int:
    """Move the statement's scanned pass, per programme, through custody."""
    by_programme: dict[int, list[int]] = defaultdict(list)
    for line in statement.lines:
        if line.pass_id is not None:
            assert line.programme_id is not None     # a scanned pass's line names its programme
            by_programme[line.programme_id].append(line.pass_id)
    moved = 0
    for programme_id, ids in by_programme.items():
        programme = session.get_one(Programme, programme_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            moved += custody.move(session, programme, nature=nature,
                                  criteria=[Pass.id.in_(chunk)], to_holder_id=statement.structure_id,
                                  actor=actor, expected_count=len(chunk), ref_type="releve",
                                  ref_id=statement.id)
    return moved


def _ledger_corrections(session: Session, statement: Statement, nature: Nature,
                        to_state: PassState, actor: Actor) -> int:
    """Every correction line of the statement reaches the ledger as its own
    entry of the same nature as the statement's pass (no netting: one entry
    per correction, count 0, its signed amount, ``ref_type='correction_releve'``,
    ``ref_id`` = the statement), so that what is owed (validation,
    CONTRE_PAIEMENT) and what is paid (PAIEMENT) in the ledger — and thus in
    the reddition des comptes, CGCT L1611-7 IV — equal the statement's total
    to the cent. The entry goes to the programme (and commune) of the line it
    corrects, else of the statement's first scanned pass."""
    scanned = [line for line in statement.lines if line.pass_id is not None]
    if not scanned:
        return 0
    by_id = {line.id: line for line in statement.lines}
    communes: dict[int | None, int | None] = dict(session.execute(sa.select(Pass.id, Pass.commune_id).where(
        Pass.id.in_([line.pass_id for line in scanned]))).tuples().all())
    statement_communes = {communes.get(line.pass_id) for line in scanned}
    written = 0
    for line in statement.lines:
        if line.pass_id is not None:
            continue
        target = by_id.get(line.corrects_line_id) if line.corrects_line_id else None
        if target is None or target.pass_id is None:
            target = scanned[0]
            commune_id = next(iter(statement_communes)) if len(statement_communes) == 1 else None
        else:
            commune_id = communes.get(target.pass_id)
        now = utcnow()
        assert target.programme_id is not None and target.pass_id is not None   # a scanned line
        # The sealer adds the entry to the flow rollups (rollups.add_entries).
        ledger.append(session, programme_id=target.programme_id, nature=nature, actor=actor,
                      from_state=None, from_holder_id=None, to_state=to_state,
                      to_holder_id=statement.structure_id, pass_first_id=target.pass_id,
                      pass_last_id=target.pass_id, serial_first=target.serial,
                      serial_last=target.serial, count=0, amount_cents=line.amount_cents,
                      ref_type=CORRECTION_REF, ref_id=statement.id,
                      reason=f"Correction (ligne {line.id}) : {line.label}", created_at=now,
                      commune_id=commune_id)
        written += 1
    return written


def validate(session: Session, statement: Statement, *, actor: Actor) -> Statement:
    """brouillon → validé: its pass become "mis en contre-paiement" (art. 5)."""
    if statement.status is not StatementStatus.BROUILLON:
        raise Conflict(f"Ce relevé est déjà {statement.status.label}.")
    if not statement.lines:
        raise Conflict("Relevé vide : rien à valider.")
    if operateurs.current_bank_details(session, statement.structure_id) is None:
        raise Conflict("Aucun IBAN validé pour cet opérateur : le contre-paiement est impossible.")
    _move_lines(session, statement, Nature.CONTRE_PAIEMENT, actor)
    _ledger_corrections(session, statement, Nature.CONTRE_PAIEMENT, PassState.CONTRE_PAIEMENT,
                        actor)
    statement.status = StatementStatus.VALIDE
    statement.validated_at = utcnow()
    statement.validated_by_id = actor.user_id
    session.flush()
    journal.record(session, action="statement.validated", actor=actor,
                   tenant_id=statement.structure_id, target="relevé", target_id=statement.id,
                   before={"état": StatementStatus.BROUILLON.label},
                   after={"état": statement.status.label})
    return statement


def mark_paid(session: Session, statement: Statement, *, bank_reference: str, paid_on: dt.date,
              actor: Actor) -> Statement:
    """validé → payé with the bank reference and date (nature PAIEMENT)."""
    if statement.status is not StatementStatus.VALIDE:
        raise Conflict("Seul un relevé validé peut être marqué payé.")
    reference = (bank_reference or "").strip()
    if not reference:
        raise InvalidInput("Indiquez la référence du virement.", field="bank_reference")
    _move_lines(session, statement, Nature.PAIEMENT, actor)
    _ledger_corrections(session, statement, Nature.PAIEMENT, PassState.PAYE, actor)
    statement.status = StatementStatus.PAYE
    statement.bank_reference = reference[:100]
    statement.paid_on = paid_on
    statement.paid_recorded_by_id = actor.user_id
    session.flush()
    journal.record(session, action="statement.paid", actor=actor,
                   tenant_id=statement.structure_id, target="relevé", target_id=statement.id,
                   after={"référence": statement.bank_reference, "payé le": paid_on})
    return statement


CSV_HEADER = ["releve", "operateur", "mois", "ligne", "date", "numero_pass", "service",
              "montant_centimes", "montant", "corrige_ligne"]


def to_csv(statement: Statement) -> str:
    """CSV for French Excel: ';' separator and a UTF-8 BOM."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = spreadsheet.csv_writer(out)
    writer.writerow(CSV_HEADER)
    for line in statement.lines:
        writer.writerow([statement.id, statement.structure.name, statement.period, line.id,
                         format_datetime(line.occurred_at), line.serial, line.label,
                         line.amount_cents, format_eur(line.amount_cents),
                         line.corrects_line_id or ""])
    writer.writerow([statement.id, statement.structure.name, statement.period, "TOTAL", "", "",
                     f"{len(statement.lines)} ligne(s)", statement.total_cents,
                     format_eur(statement.total_cents), ""])
    return out.getvalue()


def statements(session: Session, *, structure: Tenant | None = None, limit: int = 200
               ) -> list[Statement]:
    query = sa.select(Statement).order_by(Statement.period.desc(), Statement.id)
    if structure is not None:
        query = query.where(Statement.structure_id == structure.id)
    return list(session.execute(query.limit(limit)).scalars())
