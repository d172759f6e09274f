"""Scanning: an opérateur tests or consumes a pass (issue 6).

Sources: #APTIC help centre (opérateurs "testent" a pass — validity only —
and "scannent" it, recording the service delivered); convention art. 5
("un Pass consommé est un Pass scanné et mis en contre-paiement"), art. 8
(if one structure both prescribes and operates, two distinct natural
persons do the two jobs); ENGINEERING.md (exactly once: conditional UPDATE
+ UNIQUE constraint; client idempotency keys replayed on retry).

Every refusal is a ``DomainError`` with a French reason the scan page shows
in red and the API returns with its HTTP status.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import anomalies, custody, passcheck
from portal.domain.errors import Conflict, DomainError, Gone, InvalidInput, NotAllowed, NotFound
from portal.domain.ledger import Actor
from portal.formatting import PARIS, format_date, format_datetime
from portal.models import (Channel, IdempotencyRecord, OperateurProfile,
                           OperateurService, Pass, Programme, ProgrammePerimeter, Qualification,
                           Scan, Statement, StatementLine, StatementStatus, Tenant, utcnow)
from portal.models.issuance import PassState as S

# Offline scans: how far the phone's clock may be trusted (issue 6, point 6).
OFFLINE_MAX_AGE = dt.timedelta(days=7)
CLOCK_SKEW = dt.timedelta(minutes=5)


# Statements of the hot path, built once (saves statement construction and
# cache-key computation on every scan; measured under the scan load).
_bp = sa.bindparam


def _context_statement(service_given: bool):
    """The pass, its programme and every check of a scan read in ONE
    statement (issue 18): the pass by its proven serial (with its programme),
    and as scalar subqueries correlated to it the place's qualification and
    commune approval, the programme's perimeter, the service delivered, how
    many pass of the same carnet this place scanned within
    ``anomalies.BURST_WINDOW`` and the name of the pass's commune — the same
    SQL on SQLite and PostgreSQL. Who handed the pass out (art. 8) is on the
    pass itself."""
    profile = OperateurProfile.__table__
    services = OperateurService.__table__
    perimeter = ProgrammePerimeter.__table__
    scans = Scan.__table__
    tenants = Tenant.__table__

    def one(column, *where, order=None):
        query = sa.select(column).where(*where)
        if order is not None:
            query = query.order_by(order).limit(1)
        return query.scalar_subquery()

    active = [services.c.structure_id == _bp("structure_id"), services.c.active.is_(True)]
    if service_given:
        active.append(services.c.id == _bp("service_id"))
    return sa.select(
        Pass,
        one(profile.c.qualification, profile.c.structure_id == _bp("structure_id"))
        .label("qualification"),
        one(profile.c.commune_approved_at, profile.c.structure_id == _bp("structure_id"))
        .label("approved_at"),
        one(sa.func.count(), perimeter.c.programme_id == Pass.programme_id)
        .label("perimeter_size"),
        one(sa.func.count(), perimeter.c.programme_id == Pass.programme_id,
            perimeter.c.tenant_id.in_([_bp("structure_id"), _bp("parent_id")]))
        .label("in_perimeter"),
        one(sa.func.count(), *active).label("services"),
        one(services.c.id, *active, order=services.c.id).label("service_id"),
        one(services.c.name, *active, order=services.c.id).label("service_name"),
        one(sa.func.count(), scans.c.carnet_id == Pass.carnet_id,
            scans.c.structure_id == _bp("structure_id"), scans.c.cancelled_at.is_(None),
            scans.c.scanned_at >= _bp("since", type_=Scan.scanned_at.type))
        .label("carnet_scans"),
        # Named in the « autre commune » anomaly, without another statement.
        one(tenants.c.name, tenants.c.id == Pass.commune_id).label("commune_name"),
    ).options(sa.orm.joinedload(Pass.programme)).where(Pass.serial == _bp("serial"))


_CONTEXT = {True: _context_statement(True), False: _context_statement(False)}


@dataclass(frozen=True)
class Context:
    """What ``_CONTEXT`` read for one pass at one place."""
    qualification: Qualification | None
    approved_at: dt.datetime | None
    handed_user_id: int | None
    handed_tenant_id: int | None
    perimeter_size: int
    in_perimeter: int
    services: int
    service_id: int | None
    service_name: str | None
    carnet_scans: int           # live scans of the carnet here within the burst window
    commune_name: str | None = None   # the commune the pass was confié to

    @property
    def outside_perimeter(self) -> bool:
        """A programme with a perimeter accepts its pass at the listed
        structures and at every structure of the listed communes."""
        return self.perimeter_size > 0 and not self.in_perimeter


def locate(session: Session, data: ScanInput, structure: Tenant, at: dt.datetime
           ) -> tuple[Pass, Context]:
    """The pass this input proves (QR MAC tag or verification code:
    :func:`passcheck.prove`, nothing read before the secret is verified) and
    the ``Context`` of a scan of it here at ``at``, in one statement."""
    serial, key_id = passcheck.prove(code=data.code, serial=data.serial,
                                     verification_code=data.verification_code)
    row = session.execute(_CONTEXT[data.service_id is not None], {
        "serial": serial.canonical, "structure_id": structure.id,
        "parent_id": structure.parent_id, "service_id": data.service_id,
        "since": at - anomalies.BURST_WINDOW}).first()
    found = passcheck.genuine(row[0] if row is not None else None, key_id)
    assert row is not None
    qualification = Qualification(row.qualification) if row.qualification else None
    # Who handed it out (art. 8): the agent recorded on the pass with its
    # DISTRIBUTION entry, and the place holding it — a pass « distribué » is
    # held by the structure that handed it out.
    return found, Context(qualification, row.approved_at, found.handed_by_id, found.holder_id,
                          int(row.perimeter_size), int(row.in_perimeter), int(row.services),
                          row.service_id, row.service_name, int(row.carnet_scans),
                          row.commune_name)


_SCAN_COLUMNS = ("pass_id", "programme_id", "carnet_id", "serial", "structure_id", "service_id",
                 "service_name", "user_id", "api_token_id", "channel", "amount_cents",
                 "previous_holder_id", "scanned_at", "recorded_at")
_SCANS = cast(sa.Table, Scan.__table__)
_IDEMPOTENCY_RECORDS = cast(sa.Table, IdempotencyRecord.__table__)
_IDEMPOTENCY = (sa.select(IdempotencyRecord.fingerprint, IdempotencyRecord.status_code,
                          IdempotencyRecord.body)
                .where(IdempotencyRecord.structure_id == _bp("structure_id"),
                       IdempotencyRecord.key == _bp("key")))


# ------------------------------------------------------------------ reasons

class AlreadyUsed(Conflict):
    code = "deja_utilise"


class NotHandedOut(Conflict):
    code = "non_remis"


class Expired(Gone):
    code = "expire"


class Blocked(Gone):
    code = "bloque"


class NotQualified(NotAllowed):
    code = "operateur_non_qualifie"


class SamePerson(NotAllowed):
    code = "meme_personne"


class OutsidePerimeter(NotAllowed):
    code = "hors_perimetre"


class KeyReused(InvalidInput):
    code = "cle_reutilisee"


class AgentRequired(InvalidInput):
    """An API scan of a pass handed out in the same place names no agent: the
    request is incomplete (not stored with its key: resend it with ``agent``)."""
    code = "agent_requis"


@dataclass(frozen=True)
class Scanner:
    """Who scans: a structure, and the person accountable — the signed-in
    user, or for an API token the agent the request names (``agent``), else
    nobody (the token is recorded on the scan)."""
    structure: Tenant
    user_id: int | None
    api_token_id: int | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.structure.id)


@dataclass(frozen=True)
class ScanInput:
    """What was read: a QR payload / token / serial typed by a USB scanner
    (``code``), or a typed serial + verification code."""
    code: str = ""
    serial: str = ""
    verification_code: str = ""
    service_id: int | None = None
    channel: Channel = Channel.SAISIE
    occurred_at: dt.datetime | None = None

    def fingerprint(self) -> str:
        data = {"code": self.code.strip(), "serial": self.serial.strip(),
                "verification_code": self.verification_code.strip(),
                "service_id": self.service_id,
                "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Verdict:
    """The answer shown in green (valid/consumed) — refusals are errors."""
    found: Pass
    programme: Programme
    headline: str
    detail: str
    scan: Scan | None = None
    anomalies: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        body: dict = {"message": self.headline, "detail": self.detail, "serial": self.found.serial,
                "programme": self.programme.name,
                "valid_until": self.programme.valid_until.isoformat()}
        if self.scan is not None:
            body["scan"] = scan_json(self.scan)
        return body


def scan_json(scan: Scan) -> dict:
    return {"id": scan.id, "serial": scan.serial, "service": scan.service_name,
            "service_id": scan.service_id, "amount_cents": scan.amount_cents,
            "scanned_at": scan.scanned_at.isoformat(), "channel": scan.channel.value,
            "cancelled_at": scan.cancelled_at.isoformat() if scan.cancelled_at else None}


# ------------------------------------------------------------------ checks

def ensure_can_scan(context: Context, structure: Tenant) -> None:
    """Only a place qualified by #APTIC and approved by its commune scans."""
    qualified = context.qualification is Qualification.QUALIFIE
    if not structure.is_operateur or not qualified or context.approved_at is None:
        state = context.qualification.label if context.qualification else "en attente"
        if qualified:
            raise NotQualified("Opérateur non habilité : la commune n'a pas encore approuvé ce "
                               "lieu. Aucun pass ne peut être validé ici.")
        raise NotQualified(f"Opérateur non qualifié (qualification #APTIC : {state}). Aucun pass "
                           "ne peut être validé ici.")


def last_scan(session: Session, pass_id: int) -> tuple[Scan, str] | None:
    row = session.execute(
        sa.select(Scan, Tenant.name).join(Tenant, Tenant.id == Scan.structure_id)
        .where(Scan.pass_id == pass_id, Scan.cancelled_at.is_(None))
        .order_by(Scan.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def check_usable(session: Session, found: Pass, context: Context, scanner: Scanner,
                 day: dt.datetime | dt.date) -> Programme:
    """Raise the reason a pass cannot be consumed here on ``day`` (a moment,
    judged in Paris time), from the pass and the ``Context`` :func:`locate`
    read with it; else return its programme."""
    moment = day if isinstance(day, dt.datetime) else dt.datetime.combine(
        day, dt.time(12), tzinfo=PARIS)
    day = _paris_day(moment)
    programme = found.programme
    state = S(found.state)
    if state in (S.SCANNE, S.CONTRE_PAIEMENT, S.PAYE):
        previous = last_scan(session, found.id)
        where = (f" le {format_datetime(previous[0].scanned_at)} chez {previous[1]}"
                 if previous else f" le {format_datetime(found.state_changed_at)}")
        raise AlreadyUsed(f"Pass déjà utilisé{where}.", pass_id=found.id,
                          programme_id=programme.id, serial=found.serial)
    if state is S.EXPIRE or day > programme.tolerance_until:
        raise Expired(f"Pass expiré : valable jusqu'au {format_date(programme.valid_until)} "
                      f"(tolérance jusqu'au {format_date(programme.tolerance_until)}).")
    if state is S.BLOQUE:
        raise Blocked("Pass bloqué : opposition pour perte ou vol. Ne le validez pas.")
    if state is S.ANNULE:
        raise Blocked("Pass annulé par l'émetteur.")
    if state is not S.DISTRIBUE:
        raise NotHandedOut("Pass pas encore remis à un bénéficiaire par un prescripteur : il "
                           "ne peut pas être utilisé.")
    ensure_can_scan(context, scanner.structure)
    if context.outside_perimeter:
        # The perimeter is where the commanditaire's pass are valid (its
        # territory): its money pays no place outside it (issue 12).
        raise OutsidePerimeter(f"Ce pass n'est pas valable dans ce lieu : il relève du programme "
                               f"« {programme.name} », dont le périmètre ne comprend pas ce lieu.")
    if scanner.user_id is not None:
        if context.handed_user_id == scanner.user_id:
            raise SamePerson("Vous avez vous-même remis ce pass : un autre agent doit le valider "
                             "(convention, art. 8 : deux personnes distinctes).")
    elif context.handed_tenant_id == scanner.structure.id:
        # An API client that names no agent: the person cannot be told apart
        # from the prescripteur of this same place, so art. 8 cannot be checked.
        raise AgentRequired("Ce pass a été remis dans ce lieu : indiquez l'agent qui le valide "
                            "(champ « agent », son adresse e-mail), qui ne peut être celui qui "
                            "l'a remis (convention, art. 8 : deux personnes distinctes).",
                            field="agent")
    return programme


def _paris_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(PARIS).date()


def _occurred(data: ScanInput, now: dt.datetime) -> dt.datetime:
    if data.occurred_at is None:
        return now
    when = data.occurred_at
    if when.tzinfo is None:
        raise InvalidInput("Date du scan hors ligne sans fuseau horaire.", field="occurred_at")
    if when > now + CLOCK_SKEW:
        raise InvalidInput("Date du scan hors ligne dans le futur : vérifiez l'horloge du "
                           "téléphone.", field="occurred_at")
    if when < now - OFFLINE_MAX_AGE:
        raise InvalidInput("Scan hors ligne trop ancien (plus de 7 jours) : il ne peut plus "
                           "être enregistré.", field="occurred_at")
    return when


def test_pass(session: Session, data: ScanInput, scanner: Scanner, now: dt.datetime | None = None
              ) -> Verdict:
    """"Tester": validity only, nothing is written."""
    now = now or utcnow()
    found, context = locate(session, data, scanner.structure, now)
    programme = check_usable(session, found, context, scanner, now)
    return Verdict(found, programme, "Pass valable",
                   f"Utilisable jusqu'au {format_date(programme.valid_until)}. Rien n'a été "
                   "consommé.")


def _service(context: Context, service_id: int | None):
    """The (id, name) of the service delivered, from the context's count of
    active services and the one matching ``service_id`` (or the only one)."""
    if service_id is not None:
        if context.service_id is None:
            raise InvalidInput("Service inconnu pour ce lieu : choisissez un service du "
                               "catalogue.", field="service_id")
        return context.service_id, context.service_name
    if context.services == 1:
        return context.service_id, context.service_name
    if context.services:
        raise InvalidInput("Choisissez le service rendu.", field="service_id")
    return None, "Accompagnement numérique"


def consume(session: Session, data: ScanInput, scanner: Scanner, now: dt.datetime | None = None,
            *, before_ledger=None) -> Verdict:
    """"Valider": consume the pass and record the service delivered. The
    pass state, the consumption row and the ledger entry are written in the
    caller's transaction, together or not at all. ``before_ledger(verdict)``
    runs once the consumption row exists and before the ledger entry.

    The lean path (issue 18): the pass and every check in one statement
    (``locate``), the conditional UPDATE … RETURNING, the scan
    INSERT … RETURNING, the idempotency row and the ledger entry — Core
    statements, no unit of work; the entry is sealed (HMAC chain) and the
    rollups counted later by the sealer (``portal.domain.ledger.seal``)."""
    now = now or utcnow()
    occurred = _occurred(data, now)
    found, context = locate(session, data, scanner.structure, occurred)
    programme = check_usable(session, found, context, scanner, occurred)
    service_id, service_name = _service(context, data.service_id)
    other_commune = anomalies.from_other_commune(found.commune_id, scanner.structure)
    structure_id = scanner.structure.id
    scan = Scan(pass_id=found.id, programme_id=programme.id, carnet_id=found.carnet_id,
                serial=found.serial, structure_id=structure_id, service_id=service_id,
                service_name=service_name, user_id=scanner.user_id,
                api_token_id=scanner.api_token_id, channel=data.channel,
                amount_cents=programme.face_value_cents, scanned_at=occurred, recorded_at=now)
    verdict = Verdict(found, programme, "Pass validé",
                      f"{scan.service_name} — {format_datetime(occurred)}.", scan=scan)

    def record(previous_holder_id):
        scan.previous_holder_id = previous_holder_id
        # A Core INSERT (no unit of work on the hot path); the live-scan
        # UNIQUE index is the second wall.
        scan.id = session.execute(
            _SCANS.insert().returning(_SCANS.c.id),
            {column: getattr(scan, column) for column in _SCAN_COLUMNS}).scalar_one()
        if other_commune:
            verdict.anomalies.append(anomalies.flag_other_commune(
                session, scan, commune_name=context.commune_name,
                structure_name=scanner.structure.name))
        burst = anomalies.flag_carnet_burst(session, scan, programme, now,
                                            count=context.carnet_scans + 1)
        if burst:
            verdict.anomalies.append(burst)
        if before_ledger is not None:
            before_ledger(verdict)
        return scan.id

    custody.scan_pass(session, programme, pass_id=found.id, serial=found.serial,
                      previous_holder_id=found.holder_id, structure_id=structure_id,
                      actor=scanner.actor, record_consumption=record, now=now)
    return verdict


# ------------------------------------------------------------------ idempotency

@dataclass
class Outcome:
    status: int
    body: dict
    replay: bool = False
    verdict: Verdict | None = None
    error: DomainError | None = None


def _lookup(session: Session, structure_id: int, key: str, fingerprint: str) -> Outcome | None:
    record = session.execute(_IDEMPOTENCY, {"structure_id": structure_id, "key": key}).first()
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise KeyReused("Cette clé d'idempotence a déjà servi pour une autre requête : "
                        "générez une nouvelle clé pour un nouveau scan.")
    status = 200 if record.status_code == 201 else record.status_code
    return Outcome(status, dict(record.body), replay=True)


def validate_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key:
        raise InvalidInput("En-tête Idempotency-Key obligatoire pour valider un pass.",
                           field="Idempotency-Key")
    if len(key) > 100 or not key.isprintable() or not key.isascii():
        raise InvalidInput("Clé d'idempotence invalide (100 caractères ASCII au plus).",
                           field="Idempotency-Key")
    return key


# PostgreSQL aborts one of two transactions that wait on each other (a scan
# locks its pass then the ledger head; an opposition or a statement locks
# the head then the pass): nothing of the aborted one is written, so it is
# run again, like a phone retrying with the same key would.
_TRANSIENT = frozenset({"40P01", "40001"})   # deadlock_detected, serialization_failure
TRANSIENT_ATTEMPTS = 3


def consume_once(session: Session, data: ScanInput, scanner: Scanner, key: str,
                 now: dt.datetime | None = None) -> Outcome:
    """``_consume_once``, run again (at most ``TRANSIENT_ATTEMPTS`` times)
    when PostgreSQL aborted it as a deadlock victim or serialization failure."""
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return _consume_once(session, data, scanner, key, now)
        except sa.exc.OperationalError as error:
            if attempt == TRANSIENT_ATTEMPTS or \
                    getattr(error.orig, "sqlstate", None) not in _TRANSIENT:
                raise
            session.rollback()
    raise AssertionError("unreachable")


def _consume_once(session: Session, data: ScanInput, scanner: Scanner, key: str,
                  now: dt.datetime | None = None) -> Outcome:
    """Consume with a client-generated key (API, scan page, offline sync).

    The first answer — success or refusal — is stored with the key and
    replayed on retry (a replayed success answers 200 instead of 201); the
    same key with another request is refused (422). Refusing a pass already
    used flags a double-scan anomaly for #APTIC. This function commits."""
    structure_id = scanner.structure.id
    fingerprint = data.fingerprint()
    if scanner.api_token_id is not None and scanner.user_id is not None:
        # The agent an API request names is part of the request: the same key
        # with another agent is another request (422), not a replay.
        fingerprint = hashlib.sha256(f"{fingerprint}|agent:{scanner.user_id}".encode()).hexdigest()
    # No lookup of the key first (issue 18: one statement less per scan). A
    # retry meets its stored answer at the idempotency INSERT, inside the
    # transaction and before the ledger entry: the UNIQUE (structure, key)
    # fails, everything of the attempt is rolled back and the stored answer
    # replayed (or 422 when the key came with another request).
    stored: dict = {}

    def remember(verdict: Verdict) -> None:
        # Written before the ledger entry: the chain head stays locked only
        # for the entry, the head update and the commit.
        stored["body"] = verdict.as_json()
        session.execute(_IDEMPOTENCY_RECORDS.insert(), [{
            "structure_id": structure_id, "key": key, "fingerprint": fingerprint,
            "status_code": 201, "body": stored["body"]}])

    try:
        verdict = consume(session, data, scanner, now, before_ledger=remember)
        session.commit()
        return Outcome(201, stored["body"], verdict=verdict)
    except sa.exc.IntegrityError:
        # Same key sent concurrently, or (never seen) the UNIQUE index on
        # live scans caught what the conditional UPDATE let through.
        session.rollback()
        previous = _lookup(session, structure_id, key, fingerprint)
        if previous is not None:
            session.rollback()
            return previous
        error = AlreadyUsed("Ce pass vient d'être utilisé.")
        return Outcome(error.status, {"message": error.message, "code": error.code}, error=error)
    except DomainError as error:
        # Every refusal is decided before the first write of ``consume`` (the
        # conditional UPDATE that finds no row writes nothing), so the
        # refusal is stored in the same transaction. A concurrent request
        # with the same key makes the insert fail: replay its answer.
        body = {"message": error.message, "code": error.code}
        if isinstance(error, InvalidInput):
            # Unreadable input is not a decision on a pass: the client may
            # fix its request and retry with the same key. A key that already
            # has an answer replays it (a late offline retry, say).
            session.rollback()
            previous = _lookup(session, structure_id, key, fingerprint)
            session.rollback()
            if previous is not None:
                return previous
            return Outcome(error.status, body, error=error)
        try:
            if isinstance(error, AlreadyUsed):
                anomalies.flag_double_scan(session, error, scanner.structure, key)
            session.add(IdempotencyRecord(structure_id=structure_id, key=key,
                                          fingerprint=fingerprint, status_code=error.status,
                                          body=body))
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            previous = _lookup(session, structure_id, key, fingerprint)
            if previous is not None:
                session.rollback()
                return previous
        return Outcome(error.status, body, error=error)


# ------------------------------------------------------------------ undo

def undo(session: Session, scan: Scan, scanner: Scanner, *, reason: str, window_minutes: int,
         now: dt.datetime | None = None) -> Scan:
    """Cancel a scan made by mistake: by its structure, within
    ``window_minutes`` of the scan, before the month's statement is
    validated, with a reason (issue 6, point 7; nature ANNULATION_SCAN)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Indiquez le motif de l'annulation.", field="reason")
    if scan.structure_id != scanner.structure.id:
        raise NotFound("Scan introuvable.")
    if scan.cancelled_at is not None:
        raise Conflict("Ce scan est déjà annulé.")
    if now - scan.recorded_at > dt.timedelta(minutes=window_minutes):
        raise Conflict(f"Un scan ne peut être annulé que dans les {window_minutes} minutes qui "
                       "suivent : contactez #APTIC.")
    line = session.execute(sa.select(StatementLine, Statement.status)
                           .join(Statement, Statement.id == StatementLine.statement_id)
                           .where(StatementLine.scan_id == scan.id)).first()
    if line is not None and line[1] is not StatementStatus.BROUILLON:
        raise Conflict("Le relevé du mois qui contient ce scan est déjà validé : annulation "
                       "impossible.")
    programme = session.get_one(Programme, scan.programme_id)
    if line is not None:
        session.delete(line[0])            # draft lines may still change
    scan.cancelled_at = now
    scan.cancelled_by_id = scanner.user_id
    scan.cancel_reason = reason[:500]
    session.flush()
    custody.unscan_pass(session, programme, pass_id=scan.pass_id, serial=scan.serial,
                        structure_id=scan.structure_id, back_to_holder_id=scan.previous_holder_id,
                        actor=scanner.actor, scan_id=scan.id, reason=reason, now=now)
    return scan


def scans_of(session: Session, structure_id: int, *, limit: int = 50, before_id: int | None = None
             ) -> list[Scan]:
    query = sa.select(Scan).where(Scan.structure_id == structure_id)
    if before_id:
        query = query.where(Scan.id < before_id)
    return list(session.execute(query.order_by(Scan.id.desc()).limit(limit)).scalars())
