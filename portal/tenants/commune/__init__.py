"""Face of a commune (territoire d'expérimentation): référent and agents."""
from portal.domain.permissions import TenantKind
from portal.tenants.common import add_common_views
from portal.web.gate import TenantBlueprint

bp = TenantBlueprint("commune", __name__, TenantKind.COMMUNE)
add_common_views(bp)

from portal.tenants.commune import views  # noqa: E402,F401
from portal.tenants.commune import allocation  # noqa: E402,F401
from portal.tenants.commune import habilitations  # noqa: E402,F401
from portal.tenants.commune import operateurs  # noqa: E402,F401
from portal.tenants.commune import dashboard  # noqa: E402,F401
from portal.tenants.commune import structures  # noqa: E402,F401
