"""The OpenAPI 3 description of ``/api/v1`` (served at /api/v1/openapi.json)."""
from __future__ import annotations


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Erreur"}}}}


ERRORS = {
    "401": _error("Jeton absent, inconnu ou révoqué (les cookies ne sont pas acceptés)."),
    "403": _error("Non autorisé : opérateur non qualifié ou non approuvé, lieu hors du "
                  "périmètre du programme (hors_perimetre), ou même personne que le "
                  "prescripteur (convention art. 8)."),
    "404": _error("Pass inconnu."),
    "409": _error("Pass déjà utilisé (quand, où) ou pas encore remis."),
    "410": _error("Pass expiré ou bloqué (opposition)."),
    "413": _error("Corps de requête trop volumineux."),
    "414": _error("Adresse (chemin et paramètres) trop longue : 4 096 caractères au plus."),
    "422": _error("Saisie illisible, pass falsifié, numéro sans son code de vérification "
                  "(code_requis), corps ou paramètre invalide, caractère interdit (NUL), clé "
                  "d'idempotence réutilisée avec un autre corps."),
    "429": _error("Trop d'échecs (codes inconnus ou illisibles) : réessayez plus tard."),
    "503": _error("Service momentanément indisponible (base de données) : réessayez."),
}
# What any operation may answer, whatever it does (tenant gate, input guard,
# request size limits, database lost).
COMMON = ("401", "413", "414", "422", "503")
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
NO_NUL = "^[^\\u0000]*$"          # NUL is refused (422) in every text field


def _responses(own: dict, *codes: str) -> dict:
    """The operation's own answers plus every status it can answer."""
    return {**own, **{code: ERRORS[code] for code in (*COMMON, *codes)}}


def document() -> dict:
    scan_request = {"$ref": "#/components/schemas/DemandeScan"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Pass Numérique — API des opérateurs", "version": "1.0.0",
                 "description": "Tester et valider des Pass Numériques depuis un téléphone ou "
                                "un logiciel de caisse. Chaque réponse porte un « message » en "
                                "français."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"jeton": []}],
        "components": {
            "securitySchemes": {"jeton": {"type": "http", "scheme": "bearer",
                                          "description": "Jeton créé par l'administrateur de la "
                                                         "structure (pn_…)."}},
            "schemas": {
                "Erreur": {"type": "object", "required": ["message"],
                           "properties": {"message": {"type": "string"},
                                          "code": {"type": "string"}}},
                "DemandeScan": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "maxLength": 300,
                                 "pattern": NO_NUL,
                                 "description": "Contenu du QR code (URL /P/…) ou jeton lu "
                                                "par une douchette."},
                        "serial": {"type": "string", "maxLength": 300,
                                   "pattern": NO_NUL,
                                   "description": "Numéro saisi à la main, avec "
                                                  "« verification_code » : le numéro seul ne "
                                                  "prouve rien (422 code_requis)."},
                        "verification_code": {"type": "string", "maxLength": 300,
                                              "pattern": NO_NUL,
                                              "description": "Code de vérification imprimé."},
                        "service_id": {"type": "integer", "minimum": 1, "maximum": MAX_INT32,
                                       "description": "Service rendu (catalogue du lieu)."},
                        "occurred_at": {"type": "string", "format": "date-time", "maxLength": 300,
                                        "pattern": NO_NUL,
                                        "description": "Heure du scan hors ligne (≤ 7 jours)."},
                        "agent": {"type": "string", "format": "email", "maxLength": 300,
                                  "pattern": NO_NUL,
                                  "description": "Adresse e-mail de l'agent opérateur qui valide "
                                                 "(membre de la structure). Obligatoire (sinon 422 "
                                                 "agent_requis) pour un pass remis dans ce même "
                                                 "lieu : l'agent qui "
                                                 "valide ne peut être celui qui l'a remis "
                                                 "(convention, art. 8)."},
                    }},
                "Scan": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "serial": {"type": "string"},
                    "service": {"type": "string"}, "service_id": {"type": "integer",
                                                                  "nullable": True},
                    "amount_cents": {"type": "integer"},
                    "scanned_at": {"type": "string", "format": "date-time"},
                    "channel": {"type": "string"},
                    "cancelled_at": {"type": "string", "format": "date-time", "nullable": True}}},
                "Verdict": {"type": "object", "required": ["message"], "properties": {
                    "message": {"type": "string"}, "detail": {"type": "string"},
                    "serial": {"type": "string"}, "programme": {"type": "string"},
                    "valid_until": {"type": "string", "format": "date"},
                    "valid": {"type": "boolean"},
                    "scan": {"$ref": "#/components/schemas/Scan"}}},
            },
        },
        "paths": {
            "/pass/test": {"post": {
                "summary": "Tester un pass (validité seule, rien n'est consommé)",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": scan_request}}},
                "responses": _responses({"200": {"description": "Pass valable", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Verdict"}}}}},
                    "403", "404", "409", "410", "429")}},
            "/scans": {
                "post": {
                    "summary": "Valider (consommer) un pass et enregistrer le service rendu",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                                    "schema": {"type": "string", "maxLength": 100},
                                    "description": "Clé unique par scan, générée par le client. "
                                                   "Une nouvelle tentative avec la même clé "
                                                   "renvoie la première réponse."}],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": scan_request}}},
                    "responses": _responses({
                        "201": {"description": "Pass validé", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Verdict"}}}},
                        "200": {"description": "Rejeu : même clé, même corps, pass déjà validé "
                                               "par cette requête", "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Verdict"}}}}},
                        "403", "404", "409", "410", "429")},
                "get": {
                    "summary": "Mes derniers scans",
                    "parameters": [{"name": "limite", "in": "query",
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                               "default": 50}},
                                   {"name": "avant", "in": "query",
                                    "description": "Scans d'identifiant inférieur (page suivante).",
                                    "schema": {"type": "integer", "minimum": 1,
                                               "maximum": MAX_INT64}}],
                    "responses": _responses({"200": {"description": "Scans de la structure"}})}},
            "/services": {"get": {
                "summary": "Catalogue des services de ma structure (pour « service_id »)",
                "responses": _responses({"200": {"description": "Services actifs"}})}},
            "/scans/{scan_id}": {"get": {
                "summary": "Un scan de ma structure",
                "parameters": [{"name": "scan_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1,
                                           "maximum": MAX_INT32}}],
                "responses": _responses({"200": {"description": "Le scan"}}, "404")}},
            "/scans/{scan_id}/annulation": {"post": {
                "summary": "Annuler un scan fait par erreur (délai court, avant validation du "
                           "relevé mensuel)",
                "parameters": [{"name": "scan_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1,
                                           "maximum": MAX_INT32}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"],
                    "properties": {"reason": {"type": "string", "minLength": 1,
                                              "maxLength": 500, "pattern": NO_NUL}}}}}},
                "responses": _responses({"200": {"description": "Scan annulé"}},
                                        "403", "404", "409")}},
        },
    }
