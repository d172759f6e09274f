"""French labels of the codes stored by the portal: the one mapping place
(issue 14 item 16, issue 15 item 3: people read labels, never codes).

Enumerations carry their own label (``PassState.label``, ``TrancheStatus.label``,
``Nature.label``…, shown with the ``badge`` filter or ``.label``); the
vocabularies stored as plain strings are defined here: target publics,
primo-diagnostic needs, the evaluation questionnaire, the programme settings
named in the action journal, the objects of the action journal. Pages, PDFs and
the CSV/XLSX exports meant for people go through these functions; the machine
exports whose codes are a contract keep the codes (see docs/ARCHITECTURE.md,
"Labels and references").

No import from the rest of the domain at module level: every domain module may
import this one.
"""
from __future__ import annotations

import datetime as dt

# Programme's target publics (art. 8 eligibility).
TARGET_PUBLICS = {
    "demandeurs_emploi": "Demandeurs d'emploi",
    "seniors": "Seniors",
    "habitants_qpv": "Habitants des quartiers prioritaires (QPV)",
    "jeunes": "Jeunes de 16 à 25 ans",
    "allocataires_minima": "Allocataires de minima sociaux",
    "personnes_handicap": "Personnes en situation de handicap",
}

# Primo-diagnostic: what the person needs help with (art. 8).
NEEDS = {
    "demarches": "Démarches administratives en ligne",
    "courriel": "Envoyer et recevoir des courriels",
    "traitement_texte": "Traitement de texte",
    "smartphone": "Prise en main d'un smartphone ou d'un ordinateur",
    "emploi": "Recherche d'emploi en ligne",
    "securite": "Sécurité et arnaques en ligne",
}

# Evaluation questionnaire: categories only (no free text about the person).
# question code → (question label, {answer code: answer label}), in form order.
QUESTIONNAIRE = {
    "tranche_age": ("Tranche d'âge", {"moins_26": "Moins de 26 ans", "26_59": "26 à 59 ans",
                                     "60_plus": "60 ans et plus"}),
    "equipement": ("Équipement", {"aucun": "Aucun", "smartphone": "Smartphone seulement",
                                  "ordinateur": "Ordinateur"}),
    "orientation": ("Orienté par", {"spontane": "Venu de lui-même", "facilitateur": "Un facilitateur",
                                    "service_social": "Un service social", "autre": "Autre"}),
}

# What an action journal entry is about (``JournalEntry.target``).
JOURNAL_TARGETS = {
    "tenant": "organisation",
    "organisation": "organisation",
    "lieu": "lieu",
    "programme": "programme",
    "membre": "membre",
    "compte": "compte",
    "invitation": "invitation",
    "relevé": "relevé",
    "habilitation": "habilitation",
    "demande d'habilitation": "demande d'habilitation",
    "coordonnées bancaires": "coordonnées bancaires",
}

# Names of values recorded in the journal that are not French words already.
_FIELDS = {
    "name": "nom", "prefix": "préfixe", "holiday_subdivision": "jours fériés locaux",
    "pentecost_worked": "lundi de Pentecôte travaillé",
    "partial_last_tranche": "dernière tranche partielle",
    "allow_partial_carnet": "remise de carnets partiels", "target_publics": "publics cibles",
    "perimetre": "périmètre", "collectivite": "collectivité",
}


def target_public(code: str) -> str:
    return TARGET_PUBLICS.get(code, code)


def need(code: str) -> str:
    return NEEDS.get(code, code)


def question(code: str) -> str:
    return QUESTIONNAIRE.get(code, (code, {}))[0]


def answer(question_code: str, code: str) -> str:
    """The label of one answer; an answer no longer offered keeps its code."""
    return QUESTIONNAIRE.get(question_code, ("", {}))[1].get(code, code)


def journal_target(code: str) -> str:
    return JOURNAL_TARGETS.get(code, code)


def field(name: str) -> str:
    """A programme setting or another recorded value's name, in French."""
    from portal.domain import issuance
    if name in issuance.INT_SETTINGS:
        return issuance.INT_SETTINGS[name][0]
    if name in issuance.DATE_SETTINGS:
        return issuance.DATE_SETTINGS[name]
    return _FIELDS.get(name, name)


def value(name: str, raw) -> str:
    """A recorded value as people read it: dates dd/mm/yyyy, oui/non, publics
    and kinds of organisation by their label (the journal stores codes)."""
    if isinstance(raw, bool):
        return "oui" if raw else "non"
    if name in ("type", "collectivite") and isinstance(raw, str):
        from portal.domain.permissions import TenantKind
        from portal.models.onboarding import Collectivite
        kind = TenantKind if name == "type" else Collectivite
        try:
            return kind(raw).label
        except ValueError:
            return raw
    if name == "target_publics" and isinstance(raw, list):
        return ", ".join(target_public(code) for code in raw)
    if isinstance(raw, list):
        return ", ".join(str(v) for v in raw)
    if isinstance(raw, int):
        from portal.formatting import format_count
        return format_count(raw)
    if isinstance(raw, str) and len(raw) == 10 and raw[4:5] == "-" and raw[7:8] == "-":
        try:
            return dt.date.fromisoformat(raw).strftime("%d/%m/%Y")
        except ValueError:
            return raw
    return "" if raw is None else str(raw)
