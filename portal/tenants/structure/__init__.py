"""Face of a structure of the field: prescripteur and/or opérateur site."""
from portal.domain.permissions import TenantKind
from portal.tenants.common import add_common_views
from portal.web.gate import TenantBlueprint

bp = TenantBlueprint("structure", __name__, TenantKind.STRUCTURE)
add_common_views(bp)

from portal.tenants.structure import views  # noqa: E402,F401
from portal.tenants.structure import desk  # noqa: E402,F401
from portal.tenants.structure import scan  # noqa: E402,F401
from portal.tenants.structure import operateur  # noqa: E402,F401
from portal.tenants.structure import dashboard  # noqa: E402,F401
from portal.tenants.structure import lieu  # noqa: E402,F401
