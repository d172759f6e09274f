"""Bank statements (ISO 20022 camt.053.001.02) that mark statements paid (issue 17).

The bank's own file decides: each booked debit is matched to its payment line
by end-to-end id (and amount) and marks the opérateur's statement « payé » with
the booking date and the bank's reference (settlement.mark_paid: pass → PAYE);
a returned transfer (a credit carrying return information, ``RtrInf``)
re-opens the statement with the reason (pass back to CONTRE_PAIEMENT, nature
RETOUR_PAIEMENT), puts the opérateur's IBAN back to review and is a
RETOUR_VIREMENT ledger entry; entries that match nothing are listed for #APTIC.

Safety: the file is parsed by lxml with entities, DTDs and network access off
(a DOCTYPE is refused) and validated against the official XSD
(``portal/data/iso20022/camt.053.001.02.xsd``) before anything is written. A
malformed or foreign file gets a French message and changes nothing; the same
file twice (same SHA-256) changes nothing; an entry already applied by an
earlier file (same bank reference, end-to-end id and direction) is not applied
again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from portal.domain import custody, funds, settlement
from portal.domain.errors import InvalidInput
from portal.domain.ledger import Actor
from portal.models import (BankDetails, BankImport, BankLine, BankOutcome, LineStatus, Mandate,
                           Pass, PaymentLine, PaymentRun, Programme, ReviewStatus, RunStatus,
                           StatementStatus, utcnow)
from portal.models.ledger import Nature

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
XSD = Path(__file__).resolve().parent.parent / "data" / "iso20022" / "camt.053.001.02.xsd"
MAX_BYTES = 5 * 1024 * 1024

# ISO 20022 external return reason codes (ExternalReturnReason1Code), the usual ones.
RETURN_REASONS = {
    "AC01": "numéro de compte incorrect", "AC04": "compte clôturé", "AC06": "compte bloqué",
    "AG01": "opération interdite sur ce compte", "AG02": "code opération invalide",
    "AM05": "doublon", "BE04": "adresse du créancier manquante", "MD07": "titulaire décédé",
    "MS02": "refus du bénéficiaire", "MS03": "motif non communiqué par la banque",
    "RC01": "BIC incorrect", "RR01": "identification du compte manquante",
    "RR03": "nom ou adresse du créancier manquant", "FOCR": "retour après demande d'annulation",
}


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


@dataclass
class Entry:
    credit_debit: str          # "DBIT" or "CRDT"
    amount_cents: int
    booked_on: dt.date
    end_to_end_id: str
    bank_reference: str
    return_code: str
    return_text: str
    label: str

    @property
    def key(self) -> str | None:
        if not self.bank_reference:
            return None
        return f"{self.bank_reference}|{self.end_to_end_id}|{self.credit_debit}"[:200]

    @property
    def return_reason(self) -> str:
        if not (self.return_code or self.return_text):
            return ""
        meaning = RETURN_REASONS.get(self.return_code, "")
        parts = [p for p in (self.return_code, meaning, self.return_text) if p]
        return " — ".join(parts)[:300]


@dataclass
class Parsed:
    message_id: str
    account_iban: str
    entries: list[Entry]


def _text(node, path: str, ns: dict) -> str:
    found = node.find(path, ns)
    return (found.text or "").strip() if found is not None and found.text else ""


def _cents(text: str) -> int:
    try:
        return int((Decimal(text) * 100).to_integral_exact())
    except (InvalidOperation, ValueError):
        raise InvalidInput("Montant illisible dans le relevé bancaire.", field="fichier") from None


def parse(data: bytes) -> Parsed:
    """Parse and validate a camt.053.001.02 file; raises InvalidInput (French)."""
    if not data:
        raise InvalidInput("Choisissez le fichier du relevé bancaire (camt.053).", field="fichier")
    if len(data) > MAX_BYTES:
        raise InvalidInput("Fichier trop volumineux (5 Mo au plus).", field="fichier")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise InvalidInput("Ce fichier n'est pas un XML lisible : attendu un relevé bancaire "
                           "camt.053 (ISO 20022).", field="fichier") from None
    if root.getroottree().docinfo.doctype:
        raise InvalidInput("Fichier refusé : les déclarations DOCTYPE ne sont pas admises dans "
                           "un relevé bancaire.", field="fichier")
    if etree.QName(root).namespace != NAMESPACE or etree.QName(root).localname != "Document":
        raise InvalidInput("Ce fichier n'est pas un relevé de compte camt.053.001.02 (ISO 20022) "
                           "— par exemple un fichier de virements pain.001 ou un autre format.",
                           field="fichier")
    schema = _schema()
    if not schema.validate(root):
        error = schema.error_log.last_error
        raise InvalidInput("Relevé bancaire non conforme au schéma ISO 20022 camt.053.001.02 "
                           f"(ligne {error.line if error else '?'}). Aucun changement.",
                           field="fichier")
    ns = {"c": NAMESPACE}
    statements = root.findall("c:BkToCstmrStmt/c:Stmt", ns)
    ibans = {_text(s, "c:Acct/c:Id/c:IBAN", ns) for s in statements}
    if len(ibans) != 1 or "" in ibans:
        raise InvalidInput("Le relevé doit porter sur un seul compte identifié par son IBAN.",
                           field="fichier")
    entries: list[Entry] = []
    for statement in statements:
        for ntry in statement.findall("c:Ntry", ns):
            if _text(ntry, "c:Sts", ns) != "BOOK":
                continue                      # pending or informative: not yet booked
            cdi = _text(ntry, "c:CdtDbtInd", ns)
            booked = _text(ntry, "c:BookgDt/c:Dt", ns) or _text(ntry, "c:BookgDt/c:DtTm", ns)[:10]
            try:
                booked_on = dt.date.fromisoformat(booked)
            except ValueError:
                raise InvalidInput("Date de comptabilisation absente ou illisible dans le relevé.",
                                   field="fichier") from None
            entry_ref = _text(ntry, "c:AcctSvcrRef", ns)
            label = _text(ntry, "c:AddtlNtryInf", ns)
            txs = ntry.findall("c:NtryDtls/c:TxDtls", ns)
            if not txs:
                entries.append(Entry(cdi, _cents(_text(ntry, "c:Amt", ns)), booked_on, "",
                                     entry_ref, "", "", label[:300]))
                continue
            for index, tx in enumerate(txs):
                amount = _text(tx, "c:AmtDtls/c:TxAmt/c:Amt", ns) or (
                    _text(ntry, "c:Amt", ns) if len(txs) == 1 else "")
                if not amount:
                    raise InvalidInput("Montant d'une opération groupée absent du relevé.",
                                       field="fichier")
                tx_ref = _text(tx, "c:Refs/c:AcctSvcrRef", ns) or (
                    f"{entry_ref}#{index}" if entry_ref else "")
                entries.append(Entry(
                    cdi, _cents(amount), booked_on, _text(tx, "c:Refs/c:EndToEndId", ns)[:35],
                    tx_ref[:100], _text(tx, "c:RtrInf/c:Rsn/c:Cd", ns),
                    " ".join(e.text or "" for e in tx.findall("c:RtrInf/c:AddtlInf", ns)).strip(),
                    (_text(tx, "c:AddtlTxInf", ns) or label)[:300]))
    return Parsed(_text(root, "c:BkToCstmrStmt/c:GrpHdr/c:MsgId", ns), ibans.pop(), entries)


# ---------------------------------------------------------------- import

def _line_for(session: Session, mandate: Mandate, end_to_end_id: str) -> PaymentLine | None:
    if not end_to_end_id:
        return None
    return session.execute(
        sa.select(PaymentLine).join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
        .where(PaymentLine.end_to_end_id == end_to_end_id, PaymentRun.mandate_id == mandate.id,
               PaymentRun.status == RunStatus.EXPORTEE)).scalar_one_or_none()


def _reopen(session: Session, mandate: Mandate, line: PaymentLine, entry: Entry, actor: Actor,
            now: dt.datetime) -> None:
    statement = line.statement
    reason = entry.return_reason or "motif non communiqué"
    if statement.status is StatementStatus.PAYE:
        # Pass back to "mis en contre-paiement", per programme, through custody.
        by_programme: dict[int, list[int]] = {}
        for item in statement.lines:
            if item.pass_id is not None:
                by_programme.setdefault(item.programme_id, []).append(item.pass_id)
        for programme_id, ids in by_programme.items():
            programme = session.get_one(Programme, programme_id)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                custody.move(session, programme, nature=Nature.RETOUR_PAIEMENT,
                             criteria=[Pass.id.in_(chunk)], to_holder_id=statement.structure_id,
                             actor=actor, expected_count=len(chunk), ref_type="releve",
                             ref_id=statement.id, reason=f"virement retourné : {reason}"[:500])
        statement.status = StatementStatus.VALIDE
        statement.paid_on = None
        statement.bank_reference = ""
    line.status = LineStatus.RETOURNE
    line.returned_on = entry.booked_on
    line.return_reason = reason[:300]
    # The opérateur's IBAN must be reviewed again before the next transfer.
    for details in session.execute(sa.select(BankDetails).where(
            BankDetails.structure_id == line.structure_id,
            BankDetails.status == ReviewStatus.VALIDE)).scalars():
        details.status = ReviewStatus.EN_ATTENTE
        details.review_reason = (f"Virement retourné le {entry.booked_on:%d/%m/%Y} "
                                 f"({reason}) : IBAN à revoir.")[:500]
    session.flush()
    funds.append_entry(session, mandate, nature=Nature.RETOUR_VIREMENT,
                       amount_cents=line.amount_cents, actor=actor, ref_type="ligne_virement",
                       ref_id=line.id, to_holder_id=mandate.mandataire_id,
                       reason=f"{line.end_to_end_id} retourné : {reason}", at=now)


def _apply(session: Session, mandate: Mandate, entry: Entry, actor: Actor,
           now: dt.datetime) -> tuple[BankOutcome, PaymentLine | None, str]:
    line = _line_for(session, mandate, entry.end_to_end_id)
    if line is None:
        return BankOutcome.INCONNU, None, "aucun virement de ce mandat ne porte cette référence"
    if line.amount_cents != entry.amount_cents:
        return BankOutcome.INCONNU, line, "montant différent du virement émis"
    returned = entry.credit_debit == "CRDT"
    if returned:
        if line.status is LineStatus.RETOURNE:
            return BankOutcome.DEJA, line, "retour déjà enregistré"
        _reopen(session, mandate, line, entry, actor, now)
        return BankOutcome.RETOUR, line, ""
    if line.status is not LineStatus.EMIS:
        return BankOutcome.DEJA, line, "débit déjà enregistré"
    line.status = LineStatus.PAYE
    line.booked_on = entry.booked_on
    line.bank_reference = entry.bank_reference[:100]
    if line.statement.status is StatementStatus.VALIDE:
        settlement.mark_paid(session, line.statement, paid_on=entry.booked_on, actor=actor,
                             bank_reference=entry.bank_reference or line.end_to_end_id)
    session.flush()
    return BankOutcome.PAYE, line, ""


COUNTERS = {BankOutcome.PAYE: "paid", BankOutcome.RETOUR: "returned",
            BankOutcome.INCONNU: "unknown", BankOutcome.DEJA: "already"}


def import_statement(session: Session, mandate: Mandate, data: bytes, *, filename: str,
                     actor: Actor) -> tuple[BankImport, bool]:
    """Import a camt.053 file. Returns (import, created); the same file again
    returns the first import unchanged (created False)."""
    parsed = parse(data)                          # nothing is written before this passes
    digest = hashlib.sha256(data).hexdigest()
    existing = session.execute(sa.select(BankImport).where(BankImport.file_sha256 == digest)
                               ).scalar_one_or_none()
    if existing is not None:
        if existing.mandate_id != mandate.id:
            raise InvalidInput("Ce relevé a déjà été importé pour un autre mandat.",
                               field="fichier")
        return existing, False
    if not mandate.account_iban:
        raise InvalidInput("Renseignez d'abord le compte bancaire du mandat.", field="fichier")
    if parsed.account_iban.replace(" ", "").upper() != mandate.account_iban:
        raise InvalidInput(f"Ce relevé concerne le compte {parsed.account_iban[:4]}…"
                           f"{parsed.account_iban[-4:]}, pas celui du mandat "
                           f"({mandate.account_iban[:4]}…{mandate.account_iban[-4:]}). "
                           "Aucun changement.", field="fichier")
    now = utcnow()
    record = BankImport(mandate_id=mandate.id, file_sha256=digest, filename=(filename or "")[:200],
                        message_id=parsed.message_id[:35], account_iban=parsed.account_iban[:34],
                        imported_at=now, imported_by_id=actor.user_id)
    session.add(record)
    session.flush()
    # Debits before returns of the same day: a transfer is debited, then returned.
    ordered = sorted(parsed.entries, key=lambda e: (e.booked_on, e.credit_debit != "DBIT"))
    seen_keys = set()
    for entry in ordered:
        key = entry.key
        already = key is not None and (key in seen_keys or session.execute(
            sa.select(BankLine.id).where(BankLine.entry_key == key)).first() is not None)
        if already:
            outcome, line, note = BankOutcome.DEJA, None, "opération déjà importée"
            key = None
        else:
            outcome, line, note = _apply(session, mandate, entry, actor, now)
            if key is not None:
                seen_keys.add(key)
        session.add(BankLine(
            import_id=record.id, entry_key=key, credit_debit=entry.credit_debit,
            amount_cents=entry.amount_cents, booked_on=entry.booked_on,
            end_to_end_id=entry.end_to_end_id, bank_reference=entry.bank_reference[:100],
            return_reason=entry.return_reason, label=(note or entry.label)[:300],
            outcome=outcome, payment_line_id=line.id if line else None))
        counter = COUNTERS[outcome]
        setattr(record, counter, getattr(record, counter) + 1)
    session.flush()
    session.refresh(record)
    return record, True


def imports(session: Session, mandate: Mandate) -> list[BankImport]:
    return list(session.execute(sa.select(BankImport).where(BankImport.mandate_id == mandate.id)
                                .order_by(BankImport.id.desc())).scalars())


def unmatched(session: Session, mandate: Mandate) -> list[BankLine]:
    return list(session.execute(
        sa.select(BankLine).join(BankImport, BankImport.id == BankLine.import_id)
        .where(BankImport.mandate_id == mandate.id, BankLine.outcome == BankOutcome.INCONNU)
        .order_by(BankLine.booked_on.desc(), BankLine.id)).scalars())
