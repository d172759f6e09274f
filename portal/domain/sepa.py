"""SEPA payment runs of the contre-paiement (issue 17).

Sources: DOMAIN.md (#APTIC help centre: "Contre-paiement: monthly, for the pass
scanned the previous month, to a validated IBAN"); délibération
CM2022/04/04/38 (#APTIC pays with the Métropole's money: the debtor is the
mandate's account); ISO 20022 pain.001.001.03 (SEPA credit transfer
initiation), written by ``sepaxml`` and validated against its XSD.

Rules here:
* one credit transfer per validated statement of an opérateur: amount = the
  statement's total (corrections included), remittance information = the
  statement's reference, a unique end-to-end id stored with the line;
* public opérateurs (``OperateurProfile.is_public_body``) are paid by mandat
  administratif through their comptable public: listed apart with their
  attestation, never in the file;
* a run is refused when it exceeds the funds available (``funds.position``);
* a run is immutable once exported (the file is stored with its SHA-256, every
  download returns the same bytes); a statement is never paid twice — a new
  run takes only validated statements with no live transfer
  (UNIQUE(statement_id, attempt); a returned transfer allows the next attempt).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.orm import Session

from portal.domain import funds, operateurs
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.formatting import format_eur
from portal.models import (BankDetails, LineStatus, Mandate, OperateurProfile, PaymentLine,
                           PaymentRun, Programme, RunStatus, Statement, StatementLine,
                           StatementStatus, utcnow)
from portal.models.ledger import Nature

SCHEMA = "pain.001.001.03"


def statement_reference(statement: Statement) -> str:
    """The reference printed on the statement and sent as remittance information."""
    return f"PN-{statement.period}-{statement.id}"


# ---------------------------------------------------------------- the mandate's account

def check_account(holder: str, iban: str, bic: str) -> tuple[str, str, str]:
    """Holder, IBAN and BIC checked with schwifty (checksum, national formats, BIC
    structure and the BIC's country against the IBAN's)."""
    holder = " ".join((holder or "").split())
    if not holder:
        raise InvalidInput("Indiquez le titulaire du compte.", field="account_holder")
    try:
        parsed_iban = IBAN(iban or "")
    except SchwiftyException:
        raise InvalidInput("IBAN invalide : vérifiez sa saisie (clé de contrôle, longueur).",
                           field="account_iban") from None
    try:
        parsed_bic = BIC(bic or "")
    except SchwiftyException:
        raise InvalidInput("BIC invalide : 8 ou 11 caractères (ex. BDFEFRPPCCT).",
                           field="account_bic") from None
    if parsed_bic.country_code != parsed_iban.country_code:
        raise InvalidInput("Le BIC ne correspond pas au pays de l'IBAN.", field="account_bic")
    return holder[:70], parsed_iban.compact, parsed_bic.compact


def set_account(session: Session, mandate: Mandate, *, holder: str, iban: str, bic: str) -> Mandate:
    mandate.account_holder, mandate.account_iban, mandate.account_bic = check_account(
        holder, iban, bic)
    session.flush()
    return mandate


# ---------------------------------------------------------------- what is to be paid

@dataclass
class Payable:
    sepa: list[tuple[Statement, BankDetails]] = field(default_factory=list)
    public: list[Statement] = field(default_factory=list)
    blocked: list[tuple[Statement, str]] = field(default_factory=list)

    @property
    def sepa_total_cents(self) -> int:
        return sum(s.total_cents for s, _b in self.sepa)


def _live_statement_ids():
    """Statements with a transfer still emitted or debited (not returned)."""
    return sa.select(PaymentLine.statement_id).where(PaymentLine.status != LineStatus.RETOURNE)


def payable(session: Session, mandate: Mandate) -> Payable:
    """Validated statements of the mandate's programmes with no live transfer."""
    programmes = sa.select(Programme.id).where(Programme.commanditaire_id == mandate.mandant_id,
                                               Programme.issuer_id == mandate.mandataire_id)
    of_mandate = sa.select(StatementLine.statement_id).where(
        StatementLine.programme_id.in_(programmes))
    statements = session.execute(
        sa.select(Statement).where(Statement.status == StatementStatus.VALIDE,
                                   Statement.id.in_(of_mandate),
                                   Statement.id.not_in(_live_statement_ids()))
        .order_by(Statement.period, Statement.id)).scalars().all()
    public = set(session.execute(sa.select(OperateurProfile.structure_id).where(
        OperateurProfile.is_public_body.is_(True))).scalars())
    result = Payable()
    for statement in statements:
        if statement.structure_id in public:
            result.public.append(statement)
            continue
        if statement.total_cents <= 0:
            result.blocked.append((statement, "montant nul ou négatif : rien à virer"))
            continue
        bank = operateurs.current_bank_details(session, statement.structure_id)
        if bank is None:
            result.blocked.append((statement, "aucun IBAN validé (à revoir après un virement "
                                              "retourné ou une modification)"))
            continue
        result.sepa.append((statement, bank))
    return result


# ---------------------------------------------------------------- runs

def prepare_run(session: Session, mandate: Mandate, *, execution_date: dt.date, actor: Actor,
                today: dt.date) -> PaymentRun:
    if not (mandate.account_iban and mandate.account_bic and mandate.account_holder):
        raise Conflict("Renseignez d'abord le compte bancaire du mandat (titulaire, IBAN, BIC).")
    if execution_date < today:
        raise InvalidInput("La date d'exécution ne peut pas être passée.", field="execution_date")
    if execution_date > today + dt.timedelta(days=60):
        raise InvalidInput("Date d'exécution trop lointaine (60 jours au plus).",
                           field="execution_date")
    funds.lock(session, mandate)               # one run at a time per mandate
    todo = payable(session, mandate)
    if not todo.sepa:
        raise Conflict("Aucun relevé validé à payer par virement SEPA.")
    total = todo.sepa_total_cents
    position = funds.position(session, mandate, today)
    if total > position.free_cents:
        raise Conflict(
            f"Campagne refusée : fonds insuffisants. Virements à émettre "
            f"{format_eur(total)} ; fonds disponibles {format_eur(position.available_cents)} "
            f"(avances {format_eur(position.advances_cents)} − virements "
            f"{format_eur(position.payments_cents)} + retours {format_eur(position.returns_cents)})"
            + (f", dont {format_eur(position.prepared_cents)} réservés par une campagne préparée"
               if position.prepared_cents else "")
            + f". Il manque {format_eur(total - position.free_cents)} : enregistrez une avance "
              "de la Métropole.")
    now = utcnow()
    run = PaymentRun(mandate_id=mandate.id, status=RunStatus.PREPAREE,
                     message_id=f"PN{mandate.id}-{now:%Y%m%d%H%M%S%f}"[:35],
                     execution_date=execution_date, debtor_name=mandate.account_holder,
                     debtor_iban=mandate.account_iban, debtor_bic=mandate.account_bic,
                     total_cents=total, created_by_id=actor.user_id, created_at=now)
    session.add(run)
    session.flush()
    for statement, bank in todo.sepa:
        attempt = 1 + int(session.execute(sa.select(sa.func.count()).where(
            PaymentLine.statement_id == statement.id)).scalar_one())
        session.add(PaymentLine(
            run_id=run.id, statement_id=statement.id, structure_id=statement.structure_id,
            attempt=attempt, amount_cents=statement.total_cents,
            end_to_end_id=f"PN-R{run.id}-S{statement.id}-T{attempt}",
            creditor_name=(bank.holder or statement.structure.name)[:140], iban=bank.iban,
            bic=bank.bic, remittance=f"Pass Numerique releve {statement_reference(statement)}"))
    session.flush()
    session.refresh(run)
    return run


def build_pain001(run: PaymentRun) -> bytes:
    """The pain.001.001.03 file of the run, validated against the XSD by sepaxml."""
    from sepaxml import SepaTransfer
    from sepaxml.validation import ValidationError

    transfer = SepaTransfer({"name": run.debtor_name, "IBAN": run.debtor_iban,
                             "BIC": run.debtor_bic, "batch": True, "currency": "EUR"},
                            schema=SCHEMA, clean=True)
    transfer._xml.find("CstmrCdtTrfInitn/GrpHdr/MsgId").text = run.message_id
    for line in run.lines:
        payment = {"name": line.creditor_name, "IBAN": line.iban, "amount": line.amount_cents,
                   "execution_date": run.execution_date, "description": line.remittance,
                   "endtoend_id": line.end_to_end_id}
        if line.bic:
            payment["BIC"] = line.bic
        transfer.add_payment(payment)
    try:
        return transfer.export(validate=True)
    except ValidationError:
        raise Conflict("Le fichier de virements n'est pas conforme au schéma pain.001 : "
                       "vérifiez les coordonnées bancaires des opérateurs.") from None


def export_run(session: Session, mandate: Mandate, run: PaymentRun, *, actor: Actor) -> bytes:
    """First export: the file is built, stored with its SHA-256 and the run becomes
    immutable; every transfer is a VIREMENT ledger entry. Later exports return the
    stored bytes unchanged."""
    if run.mandate_id != mandate.id:
        raise Conflict("Cette campagne relève d'un autre mandat.")
    if run.status is RunStatus.EXPORTEE:
        return run.file_xml.encode()
    funds.lock(session, mandate)
    for line in run.lines:
        if line.statement.status is not StatementStatus.VALIDE:
            raise Conflict(f"Le relevé {statement_reference(line.statement)} n'est plus à payer "
                           f"({line.statement.status.label}) : préparez une nouvelle campagne.")
    data = build_pain001(run)
    now = utcnow()
    run.file_xml = data.decode()
    run.file_sha256 = hashlib.sha256(data).hexdigest()
    run.status = RunStatus.EXPORTEE
    run.exported_at = now
    run.exported_by_id = actor.user_id
    session.flush()
    for line in run.lines:
        funds.append_entry(session, mandate, nature=Nature.VIREMENT,
                           amount_cents=line.amount_cents, actor=actor,
                           ref_type="ligne_virement", ref_id=line.id,
                           to_holder_id=line.structure_id,
                           reason=f"{line.end_to_end_id} {line.remittance}", at=now)
    return data


def cancel_run(session: Session, run: PaymentRun) -> None:
    """A prepared run may be dropped before export (it then reserves nothing)."""
    if run.status is not RunStatus.PREPAREE:
        raise Conflict("Une campagne exportée est immuable.")
    for line in list(run.lines):
        session.delete(line)
    session.delete(run)
    session.flush()


def runs(session: Session, mandate: Mandate) -> list[PaymentRun]:
    return list(session.execute(sa.select(PaymentRun).where(PaymentRun.mandate_id == mandate.id)
                                .order_by(PaymentRun.id.desc())).scalars())


def lines_of_statement(session: Session, statement_id: int) -> list[PaymentLine]:
    return list(session.execute(sa.select(PaymentLine).where(
        PaymentLine.statement_id == statement_id).order_by(PaymentLine.attempt)).scalars())
