from django.contrib import admin

from audit.models import AuditEntry
from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site


@admin.register(AuditEntry, site=tenant_admin_site)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AuditEntry]):
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "actor")
    search_fields = ("actor", "object_id", "action")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "actor", "action", "object_type", "object_id", "before", "after")
