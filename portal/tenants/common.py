"""Views every tenant kind has (members list), registered on each blueprint."""
from __future__ import annotations

from portal.extensions import db
from portal.web.gate import TenantBlueprint, current_tenant


def set_referent_from_form(convention):
    """The référent form, posted by the commune or by the Métropole (art. 7)."""
    from portal.domain import allocation
    from portal.web import forms
    from portal.web.actor import current_actor
    from portal.web.clock import today
    return allocation.set_referent(
        db.session, convention, name=forms.text("referent_name", "Nom du référent"),
        email=forms.text("referent_email", "Courriel du référent", max_length=254),
        phone=forms.text("referent_phone", "Téléphone du référent", max_length=30),
        on=today(), actor=current_actor())


def add_common_views(bp: TenantBlueprint) -> None:
    from portal.tenants import members as member_views
    member_views.add_member_views(bp)


def todo_items():
    """The « À traiter » of the tenant of the URL (portal/domain/todo.py) for
    the signed-in member: the lines whose page the member may open (the
    page's permission, from the gate's access rule) and whose action the
    member may do (the line's permission); the others are shown as waiting
    for the roles that can, or for another organisation."""
    from portal.domain import todo
    from portal.web.clock import today
    from portal.web.gate import access_rule, has_permission

    def can_open(endpoint) -> bool:
        rule = access_rule(endpoint) if endpoint else None
        return rule is not None and rule.permission is not None and has_permission(rule.permission)
    tenant = current_tenant()
    return todo.sort_for_member(todo.items_for(db.session, tenant, today()), tenant.kind,
                                can_open, has_permission)
