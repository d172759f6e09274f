"""Face of #APTIC: issuer of the pass and mandataire of the Métropole."""
from portal.domain.permissions import TenantKind
from portal.tenants.common import add_common_views
from portal.web.gate import TenantBlueprint

bp = TenantBlueprint("mandataire", __name__, TenantKind.MANDATAIRE)
add_common_views(bp)

from portal.tenants.mandataire import views  # noqa: E402,F401
from portal.tenants.mandataire import allocation  # noqa: E402,F401
from portal.tenants.mandataire import mandate  # noqa: E402,F401
from portal.tenants.mandataire import operateurs  # noqa: E402,F401
from portal.tenants.mandataire import dashboard  # noqa: E402,F401
from portal.tenants.mandataire import onboarding  # noqa: E402,F401
from portal.tenants.mandataire import funds  # noqa: E402,F401
