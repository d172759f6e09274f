"""Programmes, orders and activation (issuance issue).

* A programme (dispositif) belongs to a commanditaire and is issued by an
  issuer; its settings carry the convention's numbers (art. 3–6) so that no
  rule hard-codes them.
* An order of N carnets creates the carnets and their pass in state émis,
  held by the issuer, with serials from ``portal.domain.serials``.
* Activation needs the commanditaire's payment reference (numéro de
  mandat, #APTIC help centre): before it, the pass are valid nowhere.
"""
from __future__ import annotations

from typing import cast
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import calendar, custody, keys, labels, ledger, serials
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.models import Carnet, Pass, PassOrder, Programme, Tenant, utcnow
from portal.models.issuance import PassState
from portal.models.ledger import Nature

TARGET_PUBLICS = labels.TARGET_PUBLICS     # the one mapping place of labels

# AMI 1 defaults, from the MGP–commune convention.
AMI1_DEFAULTS = dict(
    face_value_cents=1000,              # preamble: 10 € per pass
    pass_per_carnet=10,                 # preamble: carnets of 10
    total_stock=155_000,                # art. 6
    valid_until=dt.date(2022, 1, 31),   # art. 3
    tolerance_until=dt.date(2022, 1, 31),
    amorcage_size=5_000,                # art. 3
    abondement_size=2_500,              # art. 3, 5
    abondement_threshold_pct=50,        # art. 5
    request_window_start=dt.date(2021, 1, 1),   # art. 4
    request_window_end=dt.date(2021, 10, 1),    # art. 4, 5: "à compter du 1er octobre 2021"
    delivery_working_days=20,           # art. 4, 5
    convention_ends_on=dt.date(2021, 10, 31),   # art. 2
    experience_due_on=dt.date(2021, 9, 1),      # art. 9: written feedback by 01/09/2021
)

INT_SETTINGS = {
    "face_value_cents": ("Valeur faciale (centimes)", 1, 100_000),
    "pass_per_carnet": ("Pass par carnet", 1, 99),
    "total_stock": ("Stock total de pass", 1, 50_000_000),
    "amorcage_size": ("Volume d'amorçage", 1, 10_000_000),
    "abondement_size": ("Volume d'abondement", 1, 10_000_000),
    "abondement_threshold_pct": ("Seuil d'abondement (%)", 1, 100),
    "delivery_working_days": ("Délai de livraison (jours ouvrés)", 1, 365),
}
DATE_SETTINGS = {
    "valid_until": "Fin de validité",
    "tolerance_until": "Fin de la tolérance",
    "request_window_start": "Ouverture des demandes",
    "request_window_end": "Fin des demandes (exclue)",
    "convention_ends_on": "Fin des conventions",
    "experience_due_on": "Retour d'expérience attendu le",
}


def validate_settings(values: dict, *, programme: Programme | None = None,
                      session: Session | None = None) -> dict:
    """Check a programme's settings; returns the cleaned values."""
    clean = dict(values)
    for name, (label, low, high) in INT_SETTINGS.items():
        value = clean.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInput(f"« {label} » doit être un entier entre {low} et {high}.",
                               field=name)
    if "name" in clean:
        name = (clean["name"] or "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("Le nom du programme est obligatoire (200 caractères au plus).",
                               field="name")
        clean["name"] = name
    if "prefix" in clean:
        prefix = (clean["prefix"] or "").strip().upper()
        if not serials.is_valid_prefix(prefix):
            raise InvalidInput("Préfixe de série invalide : 2 à 6 lettres majuscules ou chiffres, "
                               "commençant par une lettre (par exemple MGP1).", field="prefix")
        confusable = serials.undetected_prefix_errors(prefix)
        if confusable:
            raise InvalidInput(f"Préfixe refusé : une faute de frappe ({confusable[0]}) ne serait "
                               "pas détectée par la clé de contrôle. Choisissez-en un autre.",
                               field="prefix")
        clean["prefix"] = prefix
    if "holiday_subdivision" in clean and clean["holiday_subdivision"] not in calendar.SUBDIVISIONS:
        raise InvalidInput("Calendrier des jours ouvrés inconnu.", field="holiday_subdivision")
    if "target_publics" in clean:
        unknown = set(clean["target_publics"]) - set(TARGET_PUBLICS)
        if unknown:
            raise InvalidInput("Public cible inconnu.", field="target_publics")
        clean["target_publics"] = sorted(set(clean["target_publics"]))
    merged = {**({c: getattr(programme, c) for c in DATE_SETTINGS} if programme else {}),
              **{k: v for k, v in clean.items() if k in DATE_SETTINGS}}
    if merged.get("valid_until") and merged.get("tolerance_until") \
            and merged["tolerance_until"] < merged["valid_until"]:
        raise InvalidInput("La fin de la tolérance ne peut précéder la fin de validité.",
                           field="tolerance_until")
    if merged.get("request_window_start") and merged.get("request_window_end") \
            and merged["request_window_end"] <= merged["request_window_start"]:
        raise InvalidInput("La fin de la période de demande doit suivre son ouverture.",
                           field="request_window_end")
    if programme is not None and session is not None:
        issued = issued_pass_count(session, programme.id)
        if issued:
            for frozen in ("prefix", "face_value_cents", "pass_per_carnet"):
                if frozen in clean and clean[frozen] != getattr(programme, frozen):
                    raise InvalidInput("Ce réglage ne peut plus changer : des pass ont déjà été "
                                       "émis pour ce programme.", field=frozen)
        if "total_stock" in clean and clean["total_stock"] < issued:
            raise InvalidInput(f"Le stock total ne peut être inférieur aux {issued} pass déjà "
                               "émis.", field="total_stock")
    return clean


def create_programme(session: Session, *, commanditaire: Tenant, issuer: Tenant,
                     **settings) -> Programme:
    if commanditaire.kind is not TenantKind.METROPOLE or issuer.kind is not TenantKind.MANDATAIRE:
        raise InvalidInput("Un programme relie un commanditaire et un émetteur.")
    values = {**AMI1_DEFAULTS, **settings}
    values = validate_settings(values)
    if session.execute(sa.select(Programme.id).where(Programme.prefix == values["prefix"])).first():
        raise InvalidInput("Ce préfixe de série est déjà utilisé.", field="prefix")
    programme = Programme(commanditaire_id=commanditaire.id, issuer_id=issuer.id, **values)
    session.add(programme)
    session.flush()
    ledger.create_chain(session, programme.id)
    return programme


def update_programme(session: Session, programme: Programme, **settings) -> Programme:
    values = validate_settings(settings, programme=programme, session=session)
    for name, value in values.items():
        setattr(programme, name, value)
    session.flush()
    return programme


def issued_pass_count(session: Session, programme_id: int) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(Pass)
                           .where(Pass.programme_id == programme_id)).scalar_one()


def order_carnets(session: Session, programme: Programme, carnet_count: int, *,
                  actor: Actor, now: dt.datetime | None = None) -> PassOrder:
    """Create ``carnet_count`` carnets and their pass (state émis)."""
    if not isinstance(carnet_count, int) or isinstance(carnet_count, bool) or carnet_count < 1:
        raise InvalidInput("Le nombre de carnets doit être un entier positif.",
                           field="carnet_count")
    now = now or utcnow()
    ledger.lock_head(session, programme.id)  # serialises orders of one programme
    issued = issued_pass_count(session, programme.id)
    wanted = carnet_count * programme.pass_per_carnet
    if issued + wanted > programme.total_stock:
        left = (programme.total_stock - issued) // programme.pass_per_carnet
        raise Conflict(f"Commande refusée : le programme prévoit {programme.total_stock} pass, "
                       f"{issued} sont déjà émis ; {left} carnet(s) au plus peuvent être commandés.")
    last = session.execute(sa.select(sa.func.max(Carnet.number))
                           .where(Carnet.programme_id == programme.id)).scalar() or 0
    if last + carnet_count > serials.MAX_CARNET:
        raise Conflict("Numérotation des carnets épuisée pour ce programme.")
    ring = keys.pass_ring()
    order = PassOrder(programme_id=programme.id, carnet_count=carnet_count,
                      first_carnet_number=last + 1, last_carnet_number=last + carnet_count,
                      key_id=ring.active_id, ordered_at=now, ordered_by_id=actor.user_id)
    session.add(order)
    session.flush()
    # One INSERT … SELECT over the carnet numbers (a recursive CTE, on SQLite and
    # PostgreSQL alike) rather than one parameter set per carnet.
    carnets = cast(sa.Table, Carnet.__table__)
    numbers = sa.select(sa.literal(last + 1, sa.Integer).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select(numbers.c.n + 1)
                                .where(numbers.c.n < last + carnet_count))
    carnet_ids = dict(session.execute(
        sa.insert(carnets).from_select(
            ["programme_id", "order_id", "number"],
            sa.select(sa.literal(programme.id, sa.Integer), sa.literal(order.id, sa.Integer),
                      numbers.c.n))
        .returning(carnets.c.number, carnets.c.id)).tuples().all())
    if len(carnet_ids) != carnet_count:
        raise RuntimeError(f"{len(carnet_ids)} carnets created instead of {carnet_count}")
    rows = []
    prefix, kid = programme.prefix, ring.active_id
    indexes = range(1, programme.pass_per_carnet + 1)
    for number in range(last + 1, last + carnet_count + 1):
        carnet_id = carnet_ids[number]
        for index in indexes:
            rows.append({"carnet_id": carnet_id, "index_in_carnet": index, "key_id": kid,
                         "serial": serials.format_serial(prefix, number, index)})
    custody.insert_passes(session, programme, rows, holder_id=programme.issuer_id, actor=actor,
                          ref_type="commande", ref_id=order.id, now=now)
    return order


def record_payment_reference(session: Session, order: PassOrder, reference: str, *,
                             actor: Actor, now: dt.datetime | None = None) -> PassOrder:
    """The commanditaire records its payment reference (numéro de mandat)."""
    reference = (reference or "").strip()
    if not reference or len(reference) > 60:
        raise InvalidInput("Le numéro de mandat est obligatoire (60 caractères au plus).",
                           field="payment_reference")
    if order.activated_at is not None:
        raise Conflict("Cette commande est déjà activée : son numéro de mandat ne peut plus "
                       "changer.")
    order.payment_reference = reference
    order.payment_recorded_at = now or utcnow()
    order.payment_recorded_by_id = actor.user_id
    session.flush()
    return order


def activate_order(session: Session, order: PassOrder, *, actor: Actor,
                   now: dt.datetime | None = None) -> int:
    """Activate every pass of the order: they enter the commanditaire's stock."""
    if not order.payment_reference:
        raise Conflict("Activation impossible : le numéro de mandat du commanditaire n'est pas "
                       "encore enregistré.")
    if order.activated_at is not None:
        raise Conflict("Cette commande est déjà activée.")
    now = now or utcnow()
    programme = order.programme
    count = custody.move(
        session, programme, nature=Nature.ACTIVATION,
        criteria=[Pass.carnet_id.in_(sa.select(Carnet.id).where(Carnet.order_id == order.id))],
        to_holder_id=programme.commanditaire_id, expected_holder_id=programme.issuer_id,
        actor=actor, ref_type="commande", ref_id=order.id, now=now,
        expected_count=order.carnet_count * programme.pass_per_carnet)
    order.activated_at = now
    order.activated_by_id = actor.user_id
    session.flush()
    return count


def programme_figures(session: Session, programme: Programme) -> dict:
    """Counts per state, from the ledger (not from the pass table)."""
    by_state: dict[PassState, int] = {state: 0 for state in PassState}
    for (state, _holder), count in ledger.balances(session, programme.id).items():
        by_state[state] += count
    issued = sum(by_state.values())
    return {"by_state": by_state, "issued": issued,
            "issued_cents": issued * programme.face_value_cents,
            "left_to_order": programme.total_stock - issued}


def programmes_of(session: Session, tenant: Tenant) -> list[Programme]:
    return list(session.execute(sa.select(Programme).where(Programme.tenant_clause(tenant))
                                .order_by(Programme.id)).scalars())


def orders_of(session: Session, programme: Programme) -> list[PassOrder]:
    return list(session.execute(sa.select(PassOrder).where(
        PassOrder.programme_id == programme.id).order_by(PassOrder.id.desc())).scalars())
