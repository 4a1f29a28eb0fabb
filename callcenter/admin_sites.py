"""Two admin sites: the public one (tenants, domains, keys) and each tenant's own.

They are separate instances so that a tenant admin never sees the public models' full lists, and the
public admin never lists one tenant's rows: each urlconf mounts only its own site.
"""

from django.contrib.admin import AdminSite
from django.http import HttpRequest

from callcenter.tenancy import current_schema, tenant_connection


class PublicAdminSite(AdminSite):
    site_header = "Callcenter · platform administration"
    site_title = "Callcenter platform"
    index_title = "Tenants, domains and API keys"

    def has_permission(self, request: HttpRequest) -> bool:
        return current_schema() == "public" and super().has_permission(request)


class TenantAdminSite(AdminSite):
    site_title = "Callcenter"
    index_title = "Call centre configuration"
    site_url = "/dashboard/"  # "View site" opens the supervisor dashboard

    @property
    def site_header(self) -> str:  # type: ignore[override]
        tenant = getattr(tenant_connection(), "tenant", None)
        return f"Callcenter · {getattr(tenant, 'name', '')}"

    def has_permission(self, request: HttpRequest) -> bool:
        return current_schema() != "public" and super().has_permission(request)


class ReadOnlyAdminMixin:
    """For records that only the engine writes (calls, assignments, the audit log): view only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


public_admin_site = PublicAdminSite(name="public_admin")
tenant_admin_site = TenantAdminSite(name="tenant_admin")
