"""The one family of errors the domain raises.

Every error carries a French message meant for the person in front of the
screen, and an HTTP status that ``portal.web.errors`` maps to a response.
"""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "erreur"

    def __init__(self, message: str, *, field: str | None = None, **details):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(DomainError):
    """The input cannot be understood (malformed form field, payload, file)."""
    status = 422
    code = "saisie_invalide"


class NotFound(DomainError):
    status = 404
    code = "introuvable"


class NotAllowed(DomainError):
    status = 403
    code = "non_autorise"


class Conflict(DomainError):
    """The request is understood but the current state forbids it."""
    status = 409
    code = "conflit"


class Gone(DomainError):
    status = 410
    code = "perime"


class TooManyAttempts(DomainError):
    status = 429
    code = "trop_de_tentatives"

    def __init__(self, message: str, *, retry_after: int = 60, **details):
        super().__init__(message, **details)
        self.retry_after = retry_after
