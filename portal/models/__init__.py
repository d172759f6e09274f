"""All models, imported here so that Alembic sees the whole metadata."""
from portal.models.base import Base, UtcDateTime, utcnow  # noqa: F401
from portal.models.tenancy import AuthSession, Membership, Tenant, User  # noqa: F401
