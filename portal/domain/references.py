"""Human references: how people name an object on the phone (issue 14 item 16,
issue 15 item 3).

Database ids stay inside URLs. Pages, PDFs and exports meant for people name an
object by what its readers know:

* an amorçage by its commune and the day it was requested — « Amorçage de
  Bagnolet (demandé le 12/03/2021) » (a refused amorçage may be requested
  again: the day tells them apart);
* an abondement by its rank among the abondements of the commune's convention —
  « Abondement n° 2 de Bagnolet », not the global id;
* a habilitation by its agent, structure and mandate — « Habilitation de Camille
  Martin pour le CCAS de Bondy (mandat MGP-APTIC-2022) »;
* a print job by its programme prefix, carnet range and date — « Impression MGP2,
  carnets 1 à 500, du 12/03/2021 à 14:05 »;
* an order by its rank within the programme and its carnets — « Commande n° 2
  de MGP2 (carnets 501 à 1000) ».

Machine exports that are contracts keep ids (the programme export and the JSON
API, the reddition's hashed JSON and its supporting records, where the
habilitation id links a distribution to a revocation): see docs/ARCHITECTURE.md.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.formatting import format_date, format_datetime, of_place
from portal.models import Habilitation, PassOrder, PrintJob, Tranche, TrancheKind


def abondement_ranks(session: Session, convention_id: int) -> dict[int, int]:
    """Tranche id → rank (1, 2, …) of each abondement of one convention, in
    the order MGP confirmed them."""
    ids = session.execute(sa.select(Tranche.id).where(
        Tranche.convention_id == convention_id, Tranche.kind == TrancheKind.ABONDEMENT)
        .order_by(Tranche.id)).scalars()
    return {tranche_id: rank for rank, tranche_id in enumerate(ids, start=1)}


def tranche(tranche: Tranche, ranks: dict[int, int]) -> str:
    """``ranks``: ``abondement_ranks`` of the tranche's convention."""
    commune = of_place(tranche.convention.commune.name)
    if tranche.kind is TrancheKind.AMORCAGE:
        day = tranche.requested_on or tranche.confirmed_on or tranche.created_at
        return f"Amorçage {commune} (demandé le {format_date(day)})"
    return f"Abondement n° {ranks.get(tranche.id, '?')} {commune}"


def habilitation(h: Habilitation) -> str:
    return (f"Habilitation de {h.user.full_name} pour {h.structure.name} "
            f"(mandat {h.mandate.reference})")


def print_job(job: PrintJob) -> str:
    return (f"Impression {job.programme.prefix}, carnets {job.first_carnet} à "
            f"{job.last_carnet}, du {format_datetime(job.created_at)}")


def order_ranks(session: Session, programme_id: int) -> dict[int, int]:
    ids = session.execute(sa.select(PassOrder.id).where(PassOrder.programme_id == programme_id)
                          .order_by(PassOrder.id)).scalars()
    return {order_id: rank for rank, order_id in enumerate(ids, start=1)}


def order(order: PassOrder, ranks: dict[int, int]) -> str:
    """``ranks``: ``order_ranks`` of the order's programme."""
    return (f"Commande n° {ranks.get(order.id, '?')} de {order.programme.prefix} (carnets "
            f"{order.first_carnet_number} à {order.last_carnet_number})")


def lower_first(text: str) -> str:
    """« Commande n° 2 … » inside a sentence: « … pour la commande n° 2 … »."""
    return text[:1].lower() + text[1:]
