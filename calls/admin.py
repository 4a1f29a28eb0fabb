from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site
from callcenter.formatting import NOTHING, minutes_seconds
from calls.models import Call, CallType


@admin.register(CallType, site=tenant_admin_site)
class CallTypeAdmin(admin.ModelAdmin[CallType]):
    list_display = ("name", "slug", "mix_share", "updated_at")
    fields = ("slug", "name", "mix_share")
    readonly_fields = ("slug", "mix_share")

    @admin.display(description="share of simulated arrivals")
    def mix_share(self, obj: CallType) -> str:
        return f"{obj.mix_weight:.1%} (edit the mix in routing settings)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # POST /call-types creates the type with its matrix column


class SimulatedFilter(admin.SimpleListFilter):
    title = "traffic"
    parameter_name = "traffic"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("real", "Real calls"), ("simulated", "Simulated calls")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Call]) -> QuerySet[Call]:
        if self.value() == "real":
            return queryset.filter(simulation_run__isnull=True)
        if self.value() == "simulated":
            return queryset.filter(simulation_run__isnull=False)
        return queryset


@admin.register(Call, site=tenant_admin_site)
class CallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Call]):
    """Read-only: calls change only through the engine."""

    list_display = (
        "short_id",
        "masked_phone",
        "call_type",
        "priority",
        "status",
        "agent",
        "wait",
        "talk",
        "outcome",
        "assignment_ms",
        "created_at",
    )
    list_filter = ("status", "call_type", "outcome", "priority", "end_reason", SimulatedFilter, "agent__agent_type")
    list_select_related = ("call_type", "agent")
    search_fields = ("=id", "=external_id", "agent__name")
    date_hierarchy = "created_at"
    exclude = ("phone_number",)
    readonly_fields = (
        "masked_phone", "call_type", "priority", "external_id", "status", "end_reason", "agent", "created_at",
        "queued_at", "assigned_at", "ended_at", "wait", "talk", "assignment_ms", "planned_talk", "expected_end_at",
        "outcome", "simulation_run",
    )  # fmt: skip

    @admin.display(description="call", ordering="id")
    def short_id(self, obj: Call) -> str:
        return str(obj.id)[:8]

    @admin.display(description="phone number")
    def masked_phone(self, obj: Call) -> str:
        return obj.phone_number_masked

    @admin.display(description="waited")
    def wait(self, obj: Call) -> str:
        end = obj.assigned_at or obj.ended_at
        if end is None:
            end = timezone.now() if obj.status == Call.Status.QUEUED else None
        return minutes_seconds((end - obj.created_at).total_seconds() if end else None)

    @admin.display(description="talk time", ordering="actual_duration_seconds")
    def talk(self, obj: Call) -> str:
        if obj.status == Call.Status.ASSIGNED and obj.assigned_at:
            return f"{minutes_seconds((timezone.now() - obj.assigned_at).total_seconds())} so far"
        return minutes_seconds(obj.actual_duration_seconds)

    @admin.display(description="planned talk time (simulated)")
    def planned_talk(self, obj: Call) -> str:
        return minutes_seconds(obj.planned_duration_seconds)

    @admin.display(description="assignment", ordering="assignment_time_ms")
    def assignment_ms(self, obj: Call) -> str:
        return NOTHING if obj.assignment_time_ms is None else f"{obj.assignment_time_ms:.1f} ms"
