from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEntry
from callcenter.admin_sites import tenant_admin_site


@admin.register(AuditEntry, site=tenant_admin_site)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor", "object_id")
    readonly_fields = ("created_at", "actor", "action", "object_type", "object_id", "before", "after")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
