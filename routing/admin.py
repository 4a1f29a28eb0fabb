"""Admin of the routing configuration: settings (one row) and the conversion matrix as a grid."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from agents.models import AgentType
from assignment.models import ROUTING_SETTINGS_ID, ConversionRate, RoutingSettings
from callcenter.actors import Actor
from callcenter.admin_sites import tenant_admin_site
from callcenter.errors import ApplicationError
from calls.models import CallType
from routing.selectors import call_type_list
from routing.services import (
    SETTINGS_FIELDS,
    call_type_mix_update,
    conversion_matrix_update,
    routing_config,
    routing_settings_check,
    routing_settings_update,
)


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "admin"))


MIX_TOLERANCE = 1e-6


class RoutingSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    """The settings, plus one field per call type for the simulated call-type mix (shares that sum to 1)."""

    class Meta:
        model = RoutingSettings
        fields = SETTINGS_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call_types = list(call_type_list())
        for call_type in self.call_types:
            self.fields[f"mix__{call_type.slug}"] = forms.FloatField(
                label=f"{call_type.name} ({call_type.slug})",
                min_value=0.0,
                max_value=1.0,
                initial=round(call_type.mix_weight, 6),
                help_text="Share of simulated arrivals of this type; the shares must add up to 1.",
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        shares = [cleaned.get(f"mix__{c.slug}") for c in self.call_types]
        if all(share is not None for share in shares):
            total = sum(share for share in shares if share is not None)
            if abs(total - 1.0) > MIX_TOLERANCE:
                raise forms.ValidationError(f"The call-type mix must add up to 1 (it adds up to {total:g}).")
        candidate = RoutingSettings(**{name: cleaned.get(name) for name in SETTINGS_FIELDS})
        if all(cleaned.get(name) is not None for name in SETTINGS_FIELDS):
            try:
                routing_settings_check(settings=candidate)
            except ApplicationError as error:
                raise forms.ValidationError(error.message) from error
        return cleaned

    def call_type_mix(self) -> dict[str, float]:
        return {c.slug: float(self.cleaned_data[f"mix__{c.slug}"]) for c in self.call_types}


@admin.register(RoutingSettings, site=tenant_admin_site)
class RoutingSettingsAdmin(admin.ModelAdmin[RoutingSettings]):
    form = RoutingSettingsForm

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        mix = tuple(f"mix__{c.slug}" for c in call_type_list())
        return (
            (
                "Routing",
                {"fields": ("strategy", "service_level_seconds", "service_level_target", "max_assignment_time_ms")},
            ),
            ("Queue", {"fields": ("max_queue_length", "max_wait_seconds", "wrap_up_seconds")}),
            (
                "Simulation",
                {
                    "fields": (
                        "duration_model",
                        "duration_mean_seconds",
                        "duration_std_seconds",
                        "duration_min_seconds",
                        "duration_max_seconds",
                        "time_scale",
                    ),
                    "description": "Used by simulated traffic only; real calls end when the integrator says so.",
                },
            ),
            (
                "Simulated call-type mix",
                {"fields": mix, "description": "Shares of simulated arrivals; they add up to 1."},
            ),
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # The mix fields are the form's own (one per call type), not model fields.
        return super().get_form(request, obj, change, **{**kwargs, "fields": SETTINGS_FIELDS})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        RoutingSettings.objects.get_or_create(id=ROUTING_SETTINGS_ID)
        return HttpResponseRedirect("1/change/")

    def save_model(self, request: HttpRequest, obj: RoutingSettings, form: Any, change: bool) -> None:
        # Through the services (audit log, configuration snapshot); the form already checked the rules.
        actor = _actor(request)
        with transaction.atomic():
            routing_settings_update(changes={name: getattr(obj, name) for name in SETTINGS_FIELDS}, actor=actor)
            call_type_mix_update(mix=form.call_type_mix(), actor=actor)


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
