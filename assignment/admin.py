from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from agents.models import AgentType
from assignment.models import Assignment, ConversionRate, RoutingSettings
from assignment.services.config import (
    SETTINGS_FIELDS,
    conversion_matrix_update,
    routing_config,
    routing_settings_update,
)
from audit.services import Actor
from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site
from callcenter.errors import ApplicationError
from calls.models import CallType


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "admin"))


@admin.register(RoutingSettings, site=tenant_admin_site)
class RoutingSettingsAdmin(admin.ModelAdmin[RoutingSettings]):
    fields = SETTINGS_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        RoutingSettings.objects.get_or_create(id=1)
        return HttpResponseRedirect("1/change/")

    def save_model(self, request: HttpRequest, obj: RoutingSettings, form: Any, change: bool) -> None:
        try:
            routing_settings_update(
                changes={name: getattr(obj, name) for name in SETTINGS_FIELDS}, actor=_actor(request)
            )
        except ApplicationError as error:
            messages.error(request, error.message)


@admin.register(ConversionRate, site=tenant_admin_site)
class ConversionMatrixAdmin(admin.ModelAdmin[ConversionRate]):
    """The matrix edited as one grid: agent types as rows, call types as columns."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        agent_types = list(AgentType.objects.order_by("slug"))
        call_types = list(CallType.objects.order_by("slug"))
        matrix = routing_config(force=True).matrix_by_slug()
        errors: list[str] = []
        if request.method == "POST" and self.has_change_permission(request):
            submitted: dict[str, dict[str, Any]] = {}
            for agent_type in agent_types:
                row: dict[str, Any] = {}
                for call_type in call_types:
                    raw = request.POST.get(f"p__{agent_type.slug}__{call_type.slug}", "").strip()
                    try:
                        row[call_type.slug] = float(raw)
                    except ValueError:
                        row[call_type.slug] = raw
                        errors.append(f"{agent_type.slug} x {call_type.slug}: {raw!r} is not a number")
                submitted[agent_type.slug] = row
            if not errors:
                try:
                    conversion_matrix_update(matrix=submitted, actor=_actor(request))
                    messages.success(request, "Conversion matrix saved.")
                    return HttpResponseRedirect(request.path)
                except ApplicationError as error:
                    errors.append(error.message)
            matrix = submitted
        rows = [
            (
                agent_type,
                [(call_type, matrix.get(agent_type.slug, {}).get(call_type.slug, "")) for call_type in call_types],
            )
            for agent_type in agent_types
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Conversion matrix: P(OK) by agent type and call type",
            "opts": self.model._meta,
            "call_types": call_types,
            "rows": rows,
            "errors": errors,
            "can_change": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/assignment/conversion_matrix.html", context)


@admin.register(Assignment, site=tenant_admin_site)
class AssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Assignment]):
    list_display = ("call", "agent", "strategy", "candidates", "latency_ms", "created_at", "ended_at")
    list_filter = ("strategy",)
