from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site
from calls.models import Call, CallType


@admin.register(CallType, site=tenant_admin_site)
class CallTypeAdmin(admin.ModelAdmin[CallType]):
    list_display = ("slug", "name", "mix_weight", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("slug",) if obj else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # POST /call-types creates the type with its matrix column


@admin.register(Call, site=tenant_admin_site)
class CallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Call]):
    """Read-only: calls change only through the engine."""

    list_display = (
        "id",
        "masked_phone",
        "call_type",
        "priority",
        "status",
        "agent",
        "assignment_time_ms",
        "created_at",
    )
    list_filter = ("status", "call_type", "outcome")
    date_hierarchy = "created_at"
    exclude = ("phone_number",)
    readonly_fields = (
        "masked_phone", "call_type", "priority", "external_id", "status", "end_reason", "agent", "created_at",
        "queued_at", "assigned_at", "ended_at", "assignment_time_ms", "planned_duration_seconds",
        "expected_end_at", "actual_duration_seconds", "outcome",
    )  # fmt: skip

    @admin.display(description="phone number")
    def masked_phone(self, obj: Call) -> str:
        return obj.phone_number_masked
