"""Face of the Métropole (commanditaire, mandant)."""
from portal.domain.permissions import TenantKind
from portal.tenants.common import add_common_views
from portal.web.gate import TenantBlueprint

bp = TenantBlueprint("metropole", __name__, TenantKind.METROPOLE)
add_common_views(bp)

from portal.tenants.metropole import views  # noqa: E402,F401
from portal.tenants.metropole import allocation  # noqa: E402,F401
from portal.tenants.metropole import mandate  # noqa: E402,F401
from portal.tenants.metropole import validity  # noqa: E402,F401
from portal.tenants.metropole import dashboard, reports  # noqa: E402,F401
from portal.tenants.metropole import onboarding  # noqa: E402,F401
