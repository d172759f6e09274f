"""Tenant faces: one package per tenant kind, one ``TenantBlueprint`` each.

Every view of a tenant kind lives in its package; URLs look like
``/<kind>/<tenant slug>/…`` and pass through the gate in ``portal.web.gate``.
"""
from __future__ import annotations


def register_tenant_blueprints(app):
    from portal.tenants import commune, hub, mandataire, metropole, structure
    for package in (metropole, commune, hub, mandataire, structure):
        app.register_blueprint(package.bp)
