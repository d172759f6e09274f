"""Sign-in, sign-out, password reset and the tenant chooser."""
from portal.auth.views import bp  # noqa: F401
