from __future__ import annotations

from django.contrib import admin

from assignment.models import Assignment
from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site


@admin.register(Assignment, site=tenant_admin_site)
class AssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Assignment]):
    list_display = ("call", "agent", "strategy", "candidates", "latency", "created_at", "ended_at")
    list_filter = ("strategy", ("ended_at", admin.EmptyFieldListFilter), "agent__agent_type")
    list_select_related = ("call", "agent")
    search_fields = ("=call__id", "agent__name")
    date_hierarchy = "created_at"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: Assignment) -> str:
        return f"{obj.latency_ms:.2f} ms"
