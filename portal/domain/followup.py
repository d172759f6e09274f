"""Follow-up of the experimentation (convention art. 9): the commune's
written retour d'expérience, due by ``programme.experience_due_on``
(01/09/2021 for AMI 1), with the five headings of art. 9, kept as a draft
until transmitted and never edited afterwards; the follow-up meetings
(Feb–Mar, May–Jun, Sep–Oct 2021) with the communes whose référent attended.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.models import (Convention, ExperienceReport, ExperienceStatus, FollowUpMeeting,
                           Programme, Tenant, utcnow)

# The five headings of art. 9, in its order.
HEADINGS = [
    ("contributions", "Apports du dispositif"),
    ("difficulties", "Difficultés rencontrées"),
    ("feedback", "Retours des prescripteurs (et éventuellement des publics et opérateurs)"),
    ("improvements", "Pistes d'amélioration"),
    ("extension_wish", "Souhait de contribuer à l'extension du dispositif (notamment "
                       "financièrement)"),
]
MAX_TEXT = 20_000


def experience_of(session: Session, convention: Convention) -> ExperienceReport | None:
    return session.execute(sa.select(ExperienceReport).where(
        ExperienceReport.convention_id == convention.id)).scalar_one_or_none()


def save_experience(session: Session, convention: Convention, texts: dict[str, str], *,
                    submit: bool, actor: Actor) -> ExperienceReport:
    """Save the draft; ``submit`` transmits it to the Métropole (then frozen)."""
    report = experience_of(session, convention)
    if report is not None and report.status is ExperienceStatus.TRANSMIS:
        raise Conflict("Le retour d'expérience a déjà été transmis à la Métropole : il ne peut "
                       "plus être modifié (convention, art. 9).")
    if report is None:
        report = ExperienceReport(convention_id=convention.id)
        session.add(report)
    for key, label in HEADINGS:
        value = (texts.get(key) or "").strip()
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"« {label} » dépasse {MAX_TEXT} caractères.", field=key)
        setattr(report, key, value)
    if submit:
        missing = [label for key, label in HEADINGS if not getattr(report, key)]
        if missing:
            raise InvalidInput("Pour transmettre, renseignez chaque rubrique : "
                               + " ; ".join(missing) + ".", field=HEADINGS[0][0])
        report.status = ExperienceStatus.TRANSMIS
        report.submitted_at, report.submitted_by_id = utcnow(), actor.user_id
    report.updated_at = utcnow()
    session.flush()
    return report


def experiences_of(session: Session, programme: Programme
                   ) -> list[tuple[Convention, ExperienceReport | None]]:
    conventions = session.execute(
        sa.select(Convention).join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.programme_id == programme.id).order_by(Tenant.name)).scalars().all()
    reports = {r.convention_id: r for r in session.execute(sa.select(ExperienceReport).where(
        ExperienceReport.convention_id.in_([c.id for c in conventions]))).scalars()}
    return [(c, reports.get(c.id)) for c in conventions]


def record_meeting(session: Session, programme: Programme, *, held_on: dt.date, topic: str,
                   attendee_ids: list[int]) -> FollowUpMeeting:
    topic = (topic or "").strip()
    if not topic:
        raise InvalidInput("Indiquez l'objet de la réunion.", field="topic")
    allowed = set(session.execute(sa.select(Convention.commune_id).where(
        Convention.programme_id == programme.id)).scalars())
    if set(attendee_ids) - allowed:
        raise InvalidInput("Une commune présente n'est pas conventionnée pour ce programme.",
                           field="attendees")
    meeting = FollowUpMeeting(programme_id=programme.id, held_on=held_on, topic=topic[:300],
                              attendees=sorted(set(attendee_ids)))
    session.add(meeting)
    session.flush()
    return meeting


def meetings_of(session: Session, programme: Programme) -> list[FollowUpMeeting]:
    return list(session.execute(sa.select(FollowUpMeeting).where(
        FollowUpMeeting.programme_id == programme.id).order_by(FollowUpMeeting.held_on)).scalars())
