"""Face of Hub Francil'IN (diagnostics, trainings, the two opinions of art. 4)."""
from portal.domain.permissions import TenantKind
from portal.tenants.common import add_common_views
from portal.web.gate import TenantBlueprint

bp = TenantBlueprint("hub", __name__, TenantKind.HUB)
add_common_views(bp)

from portal.tenants.hub import views  # noqa: E402,F401
from portal.tenants.hub import allocation  # noqa: E402,F401
from portal.tenants.hub import network  # noqa: E402,F401
