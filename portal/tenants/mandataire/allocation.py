"""#APTIC: tranches confirmed by the Métropole, to ship to the mairies."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal.domain import allocation, commanditaires
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Tranche, TrancheStatus
from portal.tenants.mandataire import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/expeditions", permission=Permission.VIEW_TENANT)
def shipments():
    tranches = db.session.execute(
        sa.select(Tranche).where(Tranche.tenant_clause(current_tenant()),
                                 Tranche.status.in_((TrancheStatus.CONFIRMEE,
                                                     TrancheStatus.EXPEDIEE)))
        .order_by(Tranche.due_on, Tranche.id)).scalars().all()
    suggestions = {}
    taken: set[int] = set()
    for tranche in tranches:
        if tranche.status is TrancheStatus.CONFIRMEE:
            programme = tranche.convention.programme
            wanted = tranche.quantity // programme.pass_per_carnet
            free = [n for n in allocation.available_carnet_numbers(
                db.session, programme, wanted + len(taken)) if n not in taken][:wanted]
            taken.update(free)
            suggestions[tranche.id] = ", ".join(
                f"{a}-{b}" if a != b else str(a) for a, b in allocation.as_ranges(free))
    return render("tenants/mandataire/shipments.html", tranches=tranches,
                  suggestions=suggestions, today=today())


@bp.route("/expeditions/<int:tranche_id>", methods=["POST"], permission=Permission.SHIP_CARNETS)
def ship(tranche_id: int):
    tranche = get_or_404(Tranche, tranche_id)
    commanditaires.ensure_running(tranche.convention.programme, today(), "expédition")
    allocation.ship_tranche(db.session, tranche,
                            forms.number_ranges("ranges", "Carnets expédiés"),
                            actor=current_actor(), today=today())
    db.session.commit()
    flash(f"Expédition enregistrée pour {tranche.convention.commune.name}.", "success")
    return redirect_to(url_for(".shipments"))


