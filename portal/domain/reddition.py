"""Reddition des comptes of the mandataire (CGCT L1611-7 IV; délibération 2022).

For a mandate and any period, every operation by nature, without netting,
per commune and in total, with opening and closing balances in pass and
euros, and the supporting records. The figures are read from the exact
per-day rollup of the ledger kept by custody (``flow_counts``, see
``portal.domain.rollups``) and reconciled three ways against the ledger and
the pass; a mismatch is shown, never hidden:

1. per nature, the statement's total equals an independent aggregate of the
   ledger entries of the period (so a rollup that drifted shows here);
2. every entry's amount equals its count × the face value;
3. when the period runs to today, the closing balance per commune equals a
   count of the pass themselves (the pass table).

The balance of a commune is the pass "en circulation" attributed to it:
delivered and not yet paid, restituted, cancelled or expired.

The HMAC chain is verified from the last monthly anchor only (the anchor job
verifies the chain before anchoring); a full verification is one click away
on the page (``full_verification``, loaded lazily) and in ``flask ledger
verify``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import ledger, spreadsheet
from portal.domain.errors import InvalidInput
from portal.domain.ledger import Actor
from portal.domain.settlement import CORRECTION_REF, STATEMENT_REF
from portal.formatting import PARIS, format_eur
from portal.models import (BankImport, BankLine, BankOutcome, Distribution, FlowCount, FundAdvance,
                           Habilitation, LedgerEntry, LedgerHead, Mandate, Pass, PaymentLine,
                           PaymentRun, Programme, RedditionClosure, RunStatus, StatementLine, Tenant)
from portal.models.issuance import PassState as S
from portal.models.ledger import FUND_NATURES, NATURE_LABELS, Nature

CIRCULATION = frozenset({S.LIVRE, S.REPARTI, S.DISTRIBUE, S.SCANNE, S.CONTRE_PAIEMENT, S.BLOQUE})
NATURE_ORDER = [Nature.LIVRAISON, Nature.REPARTITION, Nature.REPRISE, Nature.DISTRIBUTION,
                Nature.SCAN, Nature.ANNULATION_SCAN, Nature.CONTRE_PAIEMENT, Nature.PAIEMENT,
                Nature.RETOUR_PAIEMENT, Nature.RESTITUTION, Nature.BLOCAGE, Nature.ANNULATION, Nature.EXPIRATION,
                Nature.EMISSION, Nature.ACTIVATION]
STOCK_ROW = "Stock de la Métropole et émission"


@dataclass
class Amount:
    count: int = 0
    cents: int = 0

    def add(self, count: int, cents: int) -> None:
        self.count += count
        self.cents += cents


@dataclass
class Row:
    name: str
    opening: Amount = field(default_factory=Amount)
    natures: dict = field(default_factory=lambda: defaultdict(Amount))
    closing: Amount = field(default_factory=Amount)


@dataclass
class Funds:
    """Funds section: advances, transfers and returns of the period (every
    operation, no netting), opening and closing balance of the funds
    available, and each movement with its supporting record. Read from the
    ledger (natures AVANCE, VIREMENT, RETOUR_VIREMENT)."""
    opening_cents: int = 0
    advances_cents: int = 0
    payments_cents: int = 0
    returns_cents: int = 0
    records: list = field(default_factory=list)

    @property
    def closing_cents(self) -> int:
        return self.opening_cents + self.advances_cents - self.payments_cents + self.returns_cents

    def to_dict(self) -> dict:
        return {"ouverture": self.opening_cents, "avances": self.advances_cents,
                "virements": self.payments_cents, "retours": self.returns_cents,
                "cloture": self.closing_cents, "mouvements": self.records}


@dataclass
class Statement:
    mandate_reference: str
    mandant: str
    mandataire: str
    start: dt.date
    end: dt.date
    rows: list[Row]
    total: Row
    mismatches: list[str]
    distributions: list[dict]
    payments: list[dict]
    ledger_ok: bool
    # What the integrity check covered (not part of the statement's hash).
    ledger_scope: list[str] = field(default_factory=list)
    # The mandate's funds (issue 17): see ``Funds``.
    funds: Funds | None = None
    # Habilitations of the mandate revoked during the period (supporting records).
    revocations: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        def amount(a):
            return {"pass": a.count, "centimes": a.cents}

        def row(r):
            return {"nom": r.name, "ouverture": amount(r.opening), "cloture": amount(r.closing),
                    "operations": {n.value: amount(a) for n, a in sorted(
                        r.natures.items(), key=lambda item: item[0].value)}}
        return json.dumps({"mandat": self.mandate_reference, "mandant": self.mandant,
                           "mandataire": self.mandataire, "debut": self.start.isoformat(),
                           "fin": self.end.isoformat(), "lignes": [row(r) for r in self.rows],
                           "total": row(self.total), "ecarts": self.mismatches,
                           "distributions": self.distributions, "paiements": self.payments,
                           "fonds": self.funds.to_dict() if self.funds else None,
                           # only when there are some: earlier closures keep their hash
                           **({"revocations": self.revocations} if self.revocations else {})},
                          ensure_ascii=False, sort_keys=True)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise InvalidInput("La fin de la période précède son début.", field="end")
    if start.year < 2000 or end.year > 2100:
        raise InvalidInput("Période hors des bornes acceptées (2000 à 2100).", field="end")
    low = dt.datetime.combine(start, dt.time(), PARIS).astimezone(dt.timezone.utc)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), PARIS
                               ).astimezone(dt.timezone.utc)
    return low, high


def programmes_of_mandate(session: Session, mandate: Mandate) -> list[Programme]:
    return list(session.execute(sa.select(Programme).where(
        Programme.commanditaire_id == mandate.mandant_id,
        Programme.issuer_id == mandate.mandataire_id).order_by(Programme.id)).scalars())


def _circulation_delta(entry) -> int:
    delta = 0
    if entry.to_state in CIRCULATION:
        delta += entry.count
    if entry.from_state is not None and entry.from_state in CIRCULATION:
        delta -= entry.count
    return delta


def build_statement(session: Session, mandate: Mandate, start: dt.date, end: dt.date,
                    today: dt.date, *, verify_chain: bool = True) -> Statement:
    """The HMAC chain is verified from each programme's last anchor
    (``ledger.verify(since_anchor=True)``: the anchor job verified what came
    before), so the statement's cost does not grow with the whole ledger; the
    page offers a full verification in a lazy panel (``full_verification``).
    ``verify_chain=False`` skips it (``ledger_ok`` stays True); only the bench
    uses it, to time the figures alone."""
    low, high = _bounds(start, end)
    programmes = programmes_of_mandate(session, mandate)
    face = {p.id: p.face_value_cents for p in programmes}
    names = dict(session.execute(sa.select(Tenant.id, Tenant.name)).tuples().all())
    rows: dict[int | None, Row] = {}

    def row_for(commune_id):
        if commune_id not in rows:
            rows[commune_id] = Row(names.get(commune_id, STOCK_ROW) if commune_id else STOCK_ROW)
        return rows[commune_id]

    mismatches: list[str] = []
    independent: dict[Nature, Amount] = defaultdict(Amount)
    for programme in programmes:
        # Balances and operations per commune from the exact rollup kept by
        # custody (portal.domain.rollups, flow_counts: Paris days, like _bounds).
        # Summed in SQL per commune, nature and side of ``start``.
        face_value = face[programme.id]
        ledger.settle(session, programme.id)    # the rollups count sealed entries only
        before = (FlowCount.day < start).label("before")
        for commune_id, nature, is_before, count, cents, circulation in session.execute(
                sa.select(FlowCount.commune_id, FlowCount.nature, before,
                          sa.func.sum(FlowCount.count), sa.func.sum(FlowCount.amount_cents),
                          sa.func.sum(FlowCount.circulation))
                .where(FlowCount.programme_id == programme.id, FlowCount.day <= end)
                .group_by(FlowCount.commune_id, FlowCount.nature, before)):
            row = row_for(commune_id or None)
            circulation = int(circulation or 0)
            if is_before:
                row.opening.add(circulation, circulation * face_value)
                continue
            row.natures[Nature(nature)].add(int(count), int(cents))
            row.closing.add(circulation, circulation * face_value)
        # Check 2, in the database: each entry's amount is its count × the face value.
        for seq, nature, count, cents in session.execute(
                sa.select(LedgerEntry.id, LedgerEntry.nature, LedgerEntry.count,
                          LedgerEntry.amount_cents)
                .where(LedgerEntry.programme_id == programme.id, LedgerEntry.created_at >= low,
                       LedgerEntry.created_at < high, LedgerEntry.nature.not_in(FUND_NATURES),
                       LedgerEntry.amount_cents != LedgerEntry.count * face_value,
                       LedgerEntry.ref_type != CORRECTION_REF)
                .order_by(LedgerEntry.id)):
            mismatches.append(
                f"{programme.prefix}, écriture id {seq} ({NATURE_LABELS[nature]}) : "
                f"montant {format_eur(cents)} pour {count} pass, attendu "
                f"{format_eur(count * face_value)}.")
        # Independent aggregate of the same entries (check 1).
        for nature, count, cents in session.execute(
                sa.select(LedgerEntry.nature, sa.func.sum(LedgerEntry.count),
                          sa.func.sum(LedgerEntry.amount_cents))
                .where(LedgerEntry.programme_id == programme.id, LedgerEntry.created_at >= low,
                       LedgerEntry.created_at < high, LedgerEntry.nature.not_in(FUND_NATURES))
                .group_by(LedgerEntry.nature)):
            independent[nature].add(int(count), int(cents))
    for row in rows.values():
        row.closing = Amount(row.opening.count + row.closing.count,
                             row.opening.cents + row.closing.cents)
    ordered = sorted((r for k, r in rows.items() if k is not None), key=lambda r: r.name)
    if None in rows:
        ordered.append(rows[None])
    total = Row("Total")
    for row in ordered:
        total.opening.add(row.opening.count, row.opening.cents)
        total.closing.add(row.closing.count, row.closing.cents)
        for nature, amount in row.natures.items():
            total.natures[nature].add(amount.count, amount.cents)
    for nature in set(total.natures) | set(independent):
        mine, theirs = total.natures.get(nature, Amount()), independent.get(nature, Amount())
        if (mine.count, mine.cents) != (theirs.count, theirs.cents):
            mismatches.append(f"{NATURE_LABELS[nature]} : l'état indique {mine.count} pass, le "
                              f"journal {theirs.count} pass.")
    mismatches += _statement_mismatches(session, low, high)
    if end >= today:
        actual = dict(session.execute(
            sa.select(Pass.commune_id, sa.func.count()).where(
                Pass.programme_id.in_([p.id for p in programmes]), Pass.commune_id.is_not(None),
                Pass.state.in_(CIRCULATION)).group_by(Pass.commune_id)).tuples().all())
        # (the query keeps pass with a commune: no None key)
        for commune_id in {k for k in actual if k is not None} | {k for k in rows if k is not None}:
            expected = rows[commune_id].closing.count if commune_id in rows else 0
            if actual.get(commune_id, 0) != expected:
                mismatches.append(f"{names.get(commune_id, commune_id)} : solde de clôture du "
                                  f"journal {expected} pass, pass réellement en circulation "
                                  f"{actual.get(commune_id, 0)}.")
    ledger_ok, ledger_scope = True, []
    if verify_chain:
        for p in programmes:
            report = ledger.verify(session, p.id, since_anchor=True)
            ledger_ok = ledger_ok and report.ok
            anchor = report.started_from.get(p.id)
            ledger_scope.append(
                f"{p.name} : {report.entries} écriture(s) vérifiée(s) depuis la clôture "
                f"{anchor.period} du journal (n° {anchor.head_seq})" if anchor else
                f"{p.name} : journal entier vérifié ({report.entries} écritures)")
    if not ledger_ok:
        mismatches.append("Le journal ne passe pas la vérification d'intégrité "
                          "(flask --app wsgi ledger verify).")
    fund_section = funds_section(session, mandate, programmes, low, high, names)
    mismatches.extend(_check_funds(session, mandate, fund_section, low, high))
    return Statement(mandate.reference, names.get(mandate.mandant_id, ""),
                     names.get(mandate.mandataire_id, ""), start, end, ordered, total, mismatches,
                     _distributions(session, mandate, low, high, names),
                     _payments(session, programmes, low, high, names), ledger_ok, ledger_scope,
                     fund_section, _revocations(session, mandate, low, high, names))


def _fund_entries(mandate: Mandate, programmes: list[Programme]):
    """The ledger's fund entries of this mandate (its records' ids)."""
    advances = sa.select(FundAdvance.id).where(FundAdvance.mandate_id == mandate.id)
    lines = (sa.select(PaymentLine.id).join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
             .where(PaymentRun.mandate_id == mandate.id))
    return [LedgerEntry.programme_id.in_([p.id for p in programmes]),
            LedgerEntry.nature.in_(FUND_NATURES),
            sa.or_(sa.and_(LedgerEntry.ref_type == "avance", LedgerEntry.ref_id.in_(advances)),
                   sa.and_(LedgerEntry.ref_type == "ligne_virement",
                           LedgerEntry.ref_id.in_(lines)))]


def funds_section(session: Session, mandate: Mandate, programmes: list[Programme],
                  low: dt.datetime, high: dt.datetime, names: dict) -> Funds:
    section = Funds()
    if not programmes:
        return section
    where = _fund_entries(mandate, programmes)
    sign = {Nature.AVANCE: 1, Nature.VIREMENT: -1, Nature.RETOUR_VIREMENT: 1}
    for nature, cents in session.execute(
            sa.select(LedgerEntry.nature, sa.func.sum(LedgerEntry.amount_cents))
            .where(*where, LedgerEntry.created_at < low).group_by(LedgerEntry.nature)):
        section.opening_cents += sign[Nature(nature)] * int(cents)
    for entry in session.execute(
            sa.select(LedgerEntry).where(*where, LedgerEntry.created_at >= low,
                                         LedgerEntry.created_at < high)
            .order_by(LedgerEntry.created_at, LedgerEntry.id)).scalars():
        if entry.nature is Nature.AVANCE:
            section.advances_cents += entry.amount_cents
        elif entry.nature is Nature.VIREMENT:
            section.payments_cents += entry.amount_cents
        else:
            section.returns_cents += entry.amount_cents
        section.records.append({
            "date": entry.created_at.astimezone(PARIS).strftime("%d/%m/%Y"),
            "nature": NATURE_LABELS[entry.nature], "montant_centimes": entry.amount_cents,
            "tiers": names.get(entry.to_holder_id, ""), "piece": f"{entry.ref_type} {entry.ref_id}",
            "libelle": entry.reason, "ecriture": entry.id})
    return section


def _check_funds(session: Session, mandate: Mandate, section: Funds, low: dt.datetime,
                 high: dt.datetime) -> list[str]:
    """The ledger's funds section against the supporting records themselves."""
    def total(query) -> int:
        return int(session.execute(query).scalar() or 0)
    advances = total(sa.select(sa.func.sum(FundAdvance.amount_cents)).where(
        FundAdvance.mandate_id == mandate.id, FundAdvance.created_at >= low,
        FundAdvance.created_at < high))
    payments = total(sa.select(sa.func.sum(PaymentLine.amount_cents))
                     .join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
                     .where(PaymentRun.mandate_id == mandate.id,
                            PaymentRun.status == RunStatus.EXPORTEE,
                            PaymentRun.exported_at >= low, PaymentRun.exported_at < high))
    returns = total(sa.select(sa.func.sum(BankLine.amount_cents))
                    .join(BankImport, BankImport.id == BankLine.import_id)
                    .where(BankImport.mandate_id == mandate.id,
                           BankLine.outcome == BankOutcome.RETOUR,
                           BankImport.imported_at >= low, BankImport.imported_at < high))
    problems = []
    for label, mine, theirs in (("avances", section.advances_cents, advances),
                                ("virements", section.payments_cents, payments),
                                ("retours", section.returns_cents, returns)):
        if mine != theirs:
            problems.append(f"Fonds, {label} : le journal indique {format_eur(mine)}, les pièces "
                            f"{format_eur(theirs)}.")
    return problems


def _statement_mismatches(session: Session, low: dt.datetime, high: dt.datetime) -> list[str]:
    """Check 4: every opérateur statement with a contre-paiement or payment
    entry in the period has, per nature, ledger entries (its pass and its
    corrections, all programmes) summing to its total, to the cent."""
    refs = (STATEMENT_REF, CORRECTION_REF)
    touched = sa.select(LedgerEntry.ref_id).where(
        LedgerEntry.ref_type.in_(refs), LedgerEntry.created_at >= low,
        LedgerEntry.created_at < high,
        LedgerEntry.nature.in_((Nature.CONTRE_PAIEMENT, Nature.PAIEMENT))).distinct()
    booked: dict[tuple[int, Nature], int] = defaultdict(int)
    for ref_id, nature, cents in session.execute(
            sa.select(LedgerEntry.ref_id, LedgerEntry.nature, sa.func.sum(LedgerEntry.amount_cents))
            .where(LedgerEntry.ref_type.in_(refs), LedgerEntry.ref_id.in_(touched),
                   LedgerEntry.nature.in_((Nature.CONTRE_PAIEMENT, Nature.PAIEMENT)))
            .group_by(LedgerEntry.ref_id, LedgerEntry.nature)):
        booked[(ref_id, Nature(nature))] += int(cents or 0)
    totals = dict(session.execute(
        sa.select(StatementLine.statement_id, sa.func.sum(StatementLine.amount_cents))
        .where(StatementLine.statement_id.in_(touched))
        .group_by(StatementLine.statement_id)).tuples().all())
    mismatches = []
    for (statement_id, nature), cents in sorted(booked.items()):
        expected = int(totals.get(statement_id) or 0)
        if cents != expected:
            mismatches.append(f"Relevé n° {statement_id} ({NATURE_LABELS[nature]}) : total du "
                              f"relevé {format_eur(expected)}, écritures du journal "
                              f"{format_eur(cents)}.")
    return mismatches


def _distributions(session, mandate, low, high, names) -> list[dict]:
    rows = session.execute(
        sa.select(Distribution).where(Distribution.mandate_id == mandate.id,
                                      Distribution.created_at >= low,
                                      Distribution.created_at < high)
        .options(sa.orm.joinedload(Distribution.user), sa.orm.joinedload(Distribution.habilitation),
                 sa.orm.joinedload(Distribution.beneficiary))
        .order_by(Distribution.id)).scalars()
    return [{"id": d.id, "date": d.created_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
             "structure": names.get(d.structure_id, ""), "prescripteur": d.user.full_name,
             "habilitation": d.habilitation_id,
             "habilitation_periode": f"{d.habilitation.starts_on:%d/%m/%Y}–"
                                     f"{d.habilitation.ends_on:%d/%m/%Y}",
             "mandat": mandate.reference, "pass": d.pass_count,
             "beneficiaire": d.beneficiary.code} for d in rows]


def _revocations(session, mandate, low, high, names) -> list[dict]:
    """Revocations of the mandate's habilitations taking effect in the
    period: who, for which structure, stated date, effective moment (Paris
    time), reason (supporting records of the reddition)."""
    rows = session.execute(
        sa.select(Habilitation).where(Habilitation.mandate_id == mandate.id,
                                      Habilitation.revoked_at >= low, Habilitation.revoked_at < high)
        .options(sa.orm.joinedload(Habilitation.user)).order_by(Habilitation.revoked_at)).scalars()
    return [{"habilitation": h.id, "prescripteur": h.user.full_name,
             "structure": names.get(h.structure_id, ""),
             "periode": f"{h.starts_on:%d/%m/%Y}–{h.ends_on:%d/%m/%Y}",
             "date_indiquee": f"{h.revoked_on:%d/%m/%Y}" if h.revoked_on else "",
             "effet": h.revoked_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
             "motif": h.revocation_reason} for h in rows]


def _payments(session, programmes, low, high, names) -> list[dict]:
    rows = session.execute(
        sa.select(LedgerEntry).where(LedgerEntry.programme_id.in_([p.id for p in programmes]),
                                     LedgerEntry.nature.in_((Nature.CONTRE_PAIEMENT,
                                                             Nature.PAIEMENT,
                                                             Nature.RETOUR_PAIEMENT)),
                                     LedgerEntry.created_at >= low, LedgerEntry.created_at < high)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)).scalars()
    return [{"date": e.created_at.astimezone(PARIS).strftime("%d/%m/%Y"),
             "nature": NATURE_LABELS[e.nature], "operateur": names.get(e.to_holder_id, ""),
             "pass": e.count, "montant_centimes": e.amount_cents,
             "reference": (f"relevé n° {e.ref_id}" if e.ref_type in (STATEMENT_REF, CORRECTION_REF)
                           else f"{e.ref_type} {e.ref_id}" if e.ref_type else ""),
             "motif": e.reason} for e in rows]


def full_verification(session: Session, mandate: Mandate) -> list[tuple[Programme, ledger.VerifyReport]]:
    """Every entry of each programme's chain since emission (the reddition
    page's lazy "vérification complète" panel; ``flask ledger verify``),
    sealed first."""
    programmes = programmes_of_mandate(session, mandate)
    for p in programmes:
        ledger.settle(session, p.id)
    return [(p, ledger.verify(session, p.id)) for p in programmes]


# ---------------------------------------------------------------- exports

def _header() -> list[str]:
    cols = ["Commune", "Ouverture (pass)", "Ouverture (€)"]
    for nature in NATURE_ORDER:
        cols += [f"{NATURE_LABELS[nature]} (pass)", f"{NATURE_LABELS[nature]} (€)"]
    return cols + ["Clôture (pass)", "Clôture (€)"]


def _cells(row: Row, euros) -> list:
    cells = [row.name, row.opening.count, euros(row.opening.cents)]
    for nature in NATURE_ORDER:
        amount = row.natures.get(nature, Amount())
        cells += [amount.count, euros(amount.cents)]
    return cells + [row.closing.count, euros(row.closing.cents)]


def to_csv(statement: Statement) -> str:
    """``;`` separator and UTF-8 BOM for French Excel; amounts in euros with a comma."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = spreadsheet.csv_writer(out)
    writer.writerow([f"Reddition des comptes — mandat {statement.mandate_reference}",
                     f"du {statement.start:%d/%m/%Y} au {statement.end:%d/%m/%Y}"])
    writer.writerow(_header())

    def euros(cents):
        return f"{cents / 100:.2f}".replace(".", ",")
    for row in statement.rows + [statement.total]:
        writer.writerow(_cells(row, euros))
    writer.writerow([])
    writer.writerow(["Écarts"] + (statement.mismatches or ["aucun"]))
    writer.writerow([])
    writer.writerow(["Distributions", "Date", "Structure", "Prescripteur", "Habilitation",
                     "Période d'habilitation", "Mandat", "Pass", "Bénéficiaire (code)"])
    for d in statement.distributions:
        writer.writerow(["", d["date"], d["structure"], d["prescripteur"], d["habilitation"],
                         d["habilitation_periode"], d["mandat"], d["pass"], d["beneficiaire"]])
    writer.writerow([])
    writer.writerow(["Révocations", "Effet", "Date indiquée", "Prescripteur", "Structure",
                     "Habilitation", "Période d'habilitation", "Motif"])
    for r in statement.revocations:
        writer.writerow(["", r["effet"], r["date_indiquee"], r["prescripteur"], r["structure"],
                         r["habilitation"], r["periode"], r["motif"]])
    writer.writerow([])
    writer.writerow(["Contre-paiements", "Date", "Nature", "Opérateur", "Pass", "Montant (€)",
                     "Référence", "Motif"])
    for p in statement.payments:
        writer.writerow(["", p["date"], p["nature"], p["operateur"], p["pass"],
                         euros(p["montant_centimes"]), p["reference"], p["motif"]])
    if statement.funds is not None:
        f = statement.funds
        writer.writerow([])
        writer.writerow(["Fonds du mandat", "Ouverture (€)", "Avances reçues (€)",
                         "Virements émis (€)", "Virements retournés (€)", "Clôture (€)"])
        writer.writerow(["", euros(f.opening_cents), euros(f.advances_cents),
                         euros(f.payments_cents), euros(f.returns_cents), euros(f.closing_cents)])
        writer.writerow(["Mouvements de fonds", "Date", "Nature", "Tiers", "Montant (€)", "Pièce",
                         "Libellé", "Écriture"])
        for r in f.records:
            writer.writerow(["", r["date"], r["nature"], r["tiers"], euros(r["montant_centimes"]),
                             r["piece"], r["libelle"], r["ecriture"]])
    return out.getvalue()


def to_xlsx(statement: Statement) -> bytes:
    workbook = spreadsheet.XlsxBook()
    sheet = workbook.sheet("Reddition")
    sheet.append([f"Reddition des comptes — mandat {statement.mandate_reference}",
                  f"du {statement.start:%d/%m/%Y} au {statement.end:%d/%m/%Y}"])
    sheet.append(_header())
    for row in statement.rows + [statement.total]:
        sheet.append(_cells(row, lambda cents: cents / 100))
    sheet.append([])
    sheet.append(["Écarts"] + (statement.mismatches or ["aucun"]))
    distributions = workbook.sheet("Distributions")
    distributions.append(["Date", "Structure", "Prescripteur", "Habilitation",
                          "Période d'habilitation", "Mandat", "Pass", "Bénéficiaire (code)"])
    for d in statement.distributions:
        distributions.append([d["date"], d["structure"], d["prescripteur"], d["habilitation"],
                              d["habilitation_periode"], d["mandat"], d["pass"], d["beneficiaire"]])
    revocations = workbook.sheet("Révocations")
    revocations.append(["Effet", "Date indiquée", "Prescripteur", "Structure", "Habilitation",
                        "Période d'habilitation", "Motif"])
    for r in statement.revocations:
        revocations.append([r["effet"], r["date_indiquee"], r["prescripteur"], r["structure"],
                            r["habilitation"], r["periode"], r["motif"]])
    payments = workbook.sheet("Contre-paiements")
    payments.append(["Date", "Nature", "Opérateur", "Pass", "Montant (€)", "Référence", "Motif"])
    for p in statement.payments:
        payments.append([p["date"], p["nature"], p["operateur"], p["pass"],
                         p["montant_centimes"] / 100, p["reference"], p["motif"]])
    if statement.funds is not None:
        f = statement.funds
        sheet_funds = workbook.sheet("Fonds")
        sheet_funds.append(["Ouverture (€)", "Avances reçues (€)", "Virements émis (€)",
                            "Virements retournés (€)", "Clôture (€)"])
        sheet_funds.append([f.opening_cents / 100, f.advances_cents / 100, f.payments_cents / 100,
                            f.returns_cents / 100, f.closing_cents / 100])
        sheet_funds.append([])
        sheet_funds.append(["Date", "Nature", "Tiers", "Montant (€)", "Pièce", "Libellé",
                            "Écriture"])
        for r in f.records:
            sheet_funds.append([r["date"], r["nature"], r["tiers"], r["montant_centimes"] / 100,
                                r["piece"], r["libelle"], r["ecriture"]])
    return workbook.to_bytes()


def to_pdf(statement: Statement) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from portal.printing.carnets import _fonts
    fonts = _fonts()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = fonts.regular
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm,
                            title="Reddition des comptes")
    story = [Paragraph(f"Reddition des comptes — mandat {statement.mandate_reference}",
                       styles["Title"]),
             Paragraph(f"Mandant : {statement.mandant} · mandataire : {statement.mandataire} · "
                       f"période du {statement.start:%d/%m/%Y} au {statement.end:%d/%m/%Y}",
                       styles["Normal"]), Spacer(1, 4 * mm)]
    natures = [n for n in NATURE_ORDER if statement.total.natures.get(n)]
    data = [["Commune", "Ouverture"] + [NATURE_LABELS[n] for n in natures] + ["Clôture"]]
    for row in statement.rows + [statement.total]:
        data.append([row.name, f"{row.opening.count}\n{format_eur(row.opening.cents)}"]
                    + [f"{row.natures[n].count}\n{format_eur(row.natures[n].cents)}"
                       if n in row.natures else "—" for n in natures]
                    + [f"{row.closing.count}\n{format_eur(row.closing.cents)}"])
    table = Table(data, repeatRows=1)
    table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), fonts.regular, 7),
                               ("FONT", (0, 0), (-1, 0), fonts.bold, 7),
                               ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf7"))]))
    story += [table, Spacer(1, 4 * mm),
              Paragraph("Écarts : " + ("; ".join(statement.mismatches) if statement.mismatches
                                       else "aucun — l'état est rapproché du journal."),
                        styles["Normal"]),
              *([Paragraph(
                  f"Fonds du mandat : ouverture {format_eur(statement.funds.opening_cents)} + "
                  f"avances reçues {format_eur(statement.funds.advances_cents)} − virements émis "
                  f"{format_eur(statement.funds.payments_cents)} + virements retournés "
                  f"{format_eur(statement.funds.returns_cents)} = clôture "
                  f"{format_eur(statement.funds.closing_cents)} "
                  f"({len(statement.funds.records)} mouvement(s), détail dans les exports CSV et "
                  "XLSX).", styles["Normal"])] if statement.funds else []),
              Paragraph(f"{len(statement.distributions)} distributions et "
                        f"{len(statement.payments)} opérations de contre-paiement justificatives "
                        "(détail dans les exports CSV et XLSX).", styles["Normal"]),
              Paragraph(f"Empreinte SHA-256 de l'état : {statement.sha256()}", styles["Normal"])]
    doc.build(story)
    return out.getvalue()


# ---------------------------------------------------------------- closing

def close_period(session: Session, mandate: Mandate, start: dt.date, end: dt.date, *,
                 actor: Actor, today: dt.date) -> tuple[RedditionClosure, bool]:
    """Store the statement's hash and each chain's head; closing again returns
    the first closure (second value False)."""
    existing = session.execute(sa.select(RedditionClosure).where(
        RedditionClosure.mandate_id == mandate.id, RedditionClosure.period_start == start,
        RedditionClosure.period_end == end)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    if end >= today:
        raise InvalidInput("On ne clôture qu'une période terminée.", field="end")
    statement = build_statement(session, mandate, start, end, today)
    heads = {str(h.programme_id): {"seq": h.seq, "mac": h.mac} for h in session.execute(
        sa.select(LedgerHead).where(LedgerHead.programme_id.in_(
            [p.id for p in programmes_of_mandate(session, mandate)]))
        .execution_options(populate_existing=True)).scalars()}
    closure = RedditionClosure(mandate_id=mandate.id, period_start=start, period_end=end,
                               statement_sha256=statement.sha256(), ledger_heads=heads,
                               closed_by_id=actor.user_id)
    session.add(closure)
    session.flush()
    return closure, True

