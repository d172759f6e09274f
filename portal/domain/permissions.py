"""Tenant kinds, roles and the permissions each role grants.

Permissions are named in domain words and checked in one place, the tenant
gate (``portal.web.gate``). A role only exists in one kind of tenant.
"""
from __future__ import annotations

import enum


class TenantKind(str, enum.Enum):
    METROPOLE = "metropole"    # commanditaire (MGP), mandant
    COMMUNE = "commune"        # territoire d'expérimentation
    HUB = "hub"                # Hub Francil'IN
    MANDATAIRE = "mandataire"  # #APTIC: issuer and mandataire of MGP
    STRUCTURE = "structure"    # prescripteur and/or opérateur site

    @property
    def label(self) -> str:
        return KIND_LABELS[self]


KIND_LABELS = {
    TenantKind.METROPOLE: "Métropole",
    TenantKind.COMMUNE: "Commune",
    TenantKind.HUB: "Hub territorial",
    TenantKind.MANDATAIRE: "Émetteur et mandataire",
    TenantKind.STRUCTURE: "Structure",
}


class Role(str, enum.Enum):
    MGP_AGENT = "mgp_agent"
    MGP_ADMIN = "mgp_admin"
    REFERENT = "referent"
    COMMUNE_AGENT = "commune_agent"
    HUB_AGENT = "hub_agent"
    HUB_ADMIN = "hub_admin"
    APTIC_AGENT = "aptic_agent"
    APTIC_ADMIN = "aptic_admin"
    PRESCRIPTEUR_AGENT = "prescripteur_agent"
    OPERATEUR_AGENT = "operateur_agent"
    OPERATEUR_ADMIN = "operateur_admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def tenant_kind(self) -> TenantKind:
        return ROLE_KIND[self]


ROLE_LABELS = {
    Role.MGP_AGENT: "Agent de la Métropole",
    Role.MGP_ADMIN: "Administrateur de la Métropole",
    Role.REFERENT: "Référent de projet",
    Role.COMMUNE_AGENT: "Agent communal",
    Role.HUB_AGENT: "Agent du Hub",
    Role.HUB_ADMIN: "Administrateur du Hub",
    Role.APTIC_AGENT: "Agent #APTIC",
    Role.APTIC_ADMIN: "Administrateur #APTIC",
    Role.PRESCRIPTEUR_AGENT: "Prescripteur",
    Role.OPERATEUR_AGENT: "Agent opérateur",
    Role.OPERATEUR_ADMIN: "Administrateur de la structure",
}

ROLE_KIND = {
    Role.MGP_AGENT: TenantKind.METROPOLE,
    Role.MGP_ADMIN: TenantKind.METROPOLE,
    Role.REFERENT: TenantKind.COMMUNE,
    Role.COMMUNE_AGENT: TenantKind.COMMUNE,
    Role.HUB_AGENT: TenantKind.HUB,
    Role.HUB_ADMIN: TenantKind.HUB,
    Role.APTIC_AGENT: TenantKind.MANDATAIRE,
    Role.APTIC_ADMIN: TenantKind.MANDATAIRE,
    Role.PRESCRIPTEUR_AGENT: TenantKind.STRUCTURE,
    Role.OPERATEUR_AGENT: TenantKind.STRUCTURE,
    Role.OPERATEUR_ADMIN: TenantKind.STRUCTURE,
}


class Permission(str, enum.Enum):
    # Every member of a tenant may see its home page.
    VIEW_TENANT = "view_tenant"
    MANAGE_MEMBERS = "manage_members"
    # Métropole (commanditaire)
    MANAGE_PROGRAMMES = "manage_programmes"
    CONFIRM_TRANCHES = "confirm_tranches"
    ORDER_SANCTIONS = "order_sanctions"
    # Commune
    FOLLOW_CONVENTION = "follow_convention"
    REQUEST_TRANCHE = "request_tranche"
    CONFIRM_RECEPTION = "confirm_reception"
    SPLIT_CARNETS = "split_carnets"
    # Hub
    GIVE_HUB_OPINION = "give_hub_opinion"
    # #APTIC
    ISSUE_PASS = "issue_pass"
    SHIP_CARNETS = "ship_carnets"
    HABILITATE_AGENTS = "habilitate_agents"
    QUALIFY_OPERATEURS = "qualify_operateurs"
    CLOSE_MONTH = "close_month"
    # Allocation (convention MGP–commune)
    MANAGE_CONVENTIONS = "manage_conventions"
    DESIGNATE_REFERENT = "designate_referent"
    # Mandate (délibération 2022)
    MANAGE_MANDATES = "manage_mandates"
    RENDER_ACCOUNTS = "render_accounts"
    REQUEST_HABILITATION = "request_habilitation"
    # Structures
    HAND_OUT_PASS = "hand_out_pass"
    SCAN_PASS = "scan_pass"
    MANAGE_STRUCTURE = "manage_structure"
    # Issue 6: opérateurs and end of validity
    APPROVE_OPERATEURS = "approve_operateurs"      # commune approves the places of its territory
    END_OF_VALIDITY = "end_of_validity"            # commanditaire validates blocking, acknowledges
    BLOCK_PASS = "block_pass"                      # opposition on lost or stolen carnets
    # Dashboards and reports (issue 7); reading a dashboard needs VIEW_TENANT only.
    GENERATE_REPORTS = "generate_reports"        # MGP: monthly report (convention art. 9)
    WRITE_EXPERIENCE = "write_experience"        # référent: retour d'expérience (art. 9)
    MANAGE_HUB_NETWORK = "manage_hub_network"    # Hub: facilitateurs, trainings
    # Day one (issue 13, part b)
    REGISTER_COMMANDITAIRES = "register_commanditaires"  # #APTIC: commanditaires it serves
    MANAGE_TERRITORY = "manage_territory"              # commanditaire: its communes, référents
    REGISTER_STRUCTURES = "register_structures"        # référent or #APTIC: structures
    # Issue 13: the action journal of the tenant (and of what it oversees).
    READ_JOURNAL = "read_journal"
    # Funds of the mandate and SEPA payment runs (issue 17).
    MANAGE_FUNDS = "manage_funds"                # #APTIC: calls, advances, runs, bank statements


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MGP_AGENT: frozenset({P.VIEW_TENANT}),
    Role.MGP_ADMIN: frozenset({P.VIEW_TENANT, P.MANAGE_MEMBERS, P.MANAGE_PROGRAMMES,
                               P.CONFIRM_TRANCHES, P.ORDER_SANCTIONS, P.MANAGE_CONVENTIONS}),
    Role.REFERENT: frozenset({P.VIEW_TENANT, P.MANAGE_MEMBERS, P.FOLLOW_CONVENTION,
                              P.REQUEST_TRANCHE, P.CONFIRM_RECEPTION, P.SPLIT_CARNETS,
                              P.DESIGNATE_REFERENT, P.REQUEST_HABILITATION}),
    Role.COMMUNE_AGENT: frozenset({P.VIEW_TENANT, P.FOLLOW_CONVENTION}),
    Role.HUB_AGENT: frozenset({P.VIEW_TENANT, P.GIVE_HUB_OPINION}),
    Role.HUB_ADMIN: frozenset({P.VIEW_TENANT, P.GIVE_HUB_OPINION, P.MANAGE_MEMBERS}),
    Role.APTIC_AGENT: frozenset({P.VIEW_TENANT, P.SHIP_CARNETS, P.QUALIFY_OPERATEURS}),
    Role.APTIC_ADMIN: frozenset({P.VIEW_TENANT, P.MANAGE_MEMBERS, P.ISSUE_PASS,
                                 P.SHIP_CARNETS, P.HABILITATE_AGENTS,
                                 P.QUALIFY_OPERATEURS, P.CLOSE_MONTH, P.MANAGE_MANDATES,
                                 P.RENDER_ACCOUNTS}),
    # Handing out pass also needs a valid habilitation (délibération 2022),
    # checked by the mandate module, not by the role alone.
    Role.PRESCRIPTEUR_AGENT: frozenset({P.VIEW_TENANT, P.HAND_OUT_PASS}),
    Role.OPERATEUR_AGENT: frozenset({P.VIEW_TENANT, P.SCAN_PASS}),
    Role.OPERATEUR_ADMIN: frozenset({P.VIEW_TENANT, P.SCAN_PASS, P.MANAGE_STRUCTURE,
                                     P.MANAGE_MEMBERS}),
}


# Issue 6 grants (kept apart from the table above to ease merges).
ROLE_PERMISSIONS[Role.REFERENT] |= {P.APPROVE_OPERATEURS}
ROLE_PERMISSIONS[Role.MGP_ADMIN] |= {P.END_OF_VALIDITY}
ROLE_PERMISSIONS[Role.APTIC_ADMIN] |= {P.BLOCK_PASS}
ROLE_PERMISSIONS[Role.APTIC_AGENT] |= {P.BLOCK_PASS}
# Dashboards and reports (issue 7).
ROLE_PERMISSIONS[Role.MGP_ADMIN] |= {P.GENERATE_REPORTS}
ROLE_PERMISSIONS[Role.REFERENT] |= {P.WRITE_EXPERIENCE}
ROLE_PERMISSIONS[Role.HUB_AGENT] |= {P.MANAGE_HUB_NETWORK}
ROLE_PERMISSIONS[Role.HUB_ADMIN] |= {P.MANAGE_HUB_NETWORK}
# Funds of the mandate (issue 17).
ROLE_PERMISSIONS[Role.APTIC_ADMIN] |= {P.MANAGE_FUNDS}
# Day one (issue 13, part b).
ROLE_PERMISSIONS[Role.APTIC_ADMIN] |= {P.REGISTER_COMMANDITAIRES, P.REGISTER_STRUCTURES}
ROLE_PERMISSIONS[Role.MGP_ADMIN] |= {P.MANAGE_TERRITORY}
ROLE_PERMISSIONS[Role.REFERENT] |= {P.REGISTER_STRUCTURES}
# Action journal (issue 13): every administrator reads their tenant's journal.
for _role in (Role.MGP_ADMIN, Role.REFERENT, Role.HUB_ADMIN, Role.APTIC_ADMIN,
              Role.OPERATEUR_ADMIN):
    ROLE_PERMISSIONS[_role] |= {P.READ_JOURNAL}


# What each permission lets a member do, in French (README rights table).
PERMISSION_LABELS = {
    P.VIEW_TENANT: "Voir l'espace de l'organisation et ses tableaux de bord",
    P.MANAGE_MEMBERS: "Inviter, changer le rôle et retirer des membres",
    P.READ_JOURNAL: "Lire et exporter le journal des actions",
    P.MANAGE_PROGRAMMES: "Gérer les programmes (dispositifs)",
    P.CONFIRM_TRANCHES: "Confirmer les tranches",
    P.ORDER_SANCTIONS: "Décider des sanctions",
    P.MANAGE_CONVENTIONS: "Gérer les conventions avec les communes",
    P.END_OF_VALIDITY: "Valider le blocage en fin de validité",
    P.GENERATE_REPORTS: "Produire les rapports mensuels",
    P.FOLLOW_CONVENTION: "Suivre la convention de la commune",
    P.REQUEST_TRANCHE: "Demander une tranche",
    P.CONFIRM_RECEPTION: "Confirmer la réception des carnets",
    P.SPLIT_CARNETS: "Répartir les carnets entre structures",
    P.DESIGNATE_REFERENT: "Désigner le référent",
    P.REQUEST_HABILITATION: "Demander des habilitations de prescripteurs",
    P.APPROVE_OPERATEURS: "Approuver les lieux de son territoire",
    P.WRITE_EXPERIENCE: "Rédiger le retour d'expérience",
    P.GIVE_HUB_OPINION: "Donner l'avis du Hub",
    P.MANAGE_HUB_NETWORK: "Gérer le réseau du Hub (facilitateurs, formations)",
    P.ISSUE_PASS: "Émettre des pass (commandes, impression)",
    P.SHIP_CARNETS: "Expédier des carnets",
    P.HABILITATE_AGENTS: "Habiliter des prescripteurs",
    P.QUALIFY_OPERATEURS: "Qualifier des opérateurs",
    P.CLOSE_MONTH: "Clôturer le mois, valider et payer les relevés",
    P.MANAGE_MANDATES: "Gérer les mandats",
    P.RENDER_ACCOUNTS: "Rendre compte (reddition)",
    P.BLOCK_PASS: "Faire opposition sur des pass perdus ou volés",
    P.HAND_OUT_PASS: "Remettre des pass (avec une habilitation valide)",
    P.SCAN_PASS: "Scanner des pass",
    P.MANAGE_STRUCTURE: "Gérer la structure (services, coordonnées bancaires, jetons d'API)",
    P.REGISTER_COMMANDITAIRES: "Enregistrer les commanditaires et inviter leur administrateur",
    P.MANAGE_TERRITORY: "Ajouter les communes du territoire et inviter leurs référents",
    P.REGISTER_STRUCTURES: "Enregistrer les structures d'une commune et inviter leur administrateur",
    P.MANAGE_FUNDS: "Gérer les fonds du mandat (avances, virements SEPA, relevés bancaires)",
}


def rights_table_markdown() -> str:
    """The README's table of what each role can do (a test keeps it true)."""
    lines = ["| Rôle | Organisation | Peut |", "|---|---|---|"]
    for role in Role:
        rights = [PERMISSION_LABELS.get(p, p.value) for p in Permission
                  if p in ROLE_PERMISSIONS[role]]
        lines.append(f"| {role.label} (`{role.value}`) | {role.tenant_kind.label} | "
                     + " ; ".join(rights) + " |")
    return "\n".join(lines)


def permissions_of(role: Role | str) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[Role(role)]


def roles_for_kind(kind: TenantKind) -> list[Role]:
    return [r for r in Role if ROLE_KIND[r] is kind]


