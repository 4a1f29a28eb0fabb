"""Tenant admin of webhooks: endpoints are created and changed through the services (SSRF guard,
audit, secret shown once); messages and their attempts are a read-only delivery log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from callcenter.actors import Actor
from callcenter.admin_sites import ReadOnlyAdminMixin, tenant_admin_site
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from webhooks.services import (
    WEBHOOK_EVENT_TYPES,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_message_redeliver,
    webhook_test_send,
)
from webhooks.ssrf import target_resolve


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "admin"))


class WebhookEndpointForm(forms.ModelForm):  # type: ignore[type-arg]
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="http or https, on a public address.")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "event_types", "description", "enabled", "include_simulated"]

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        try:
            target_resolve(url)
        except ApplicationError as refused:
            raise forms.ValidationError(refused.message) from refused
        return url


@admin.register(WebhookEndpoint, site=tenant_admin_site)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    form = WebhookEndpointForm
    list_display = ["url", "enabled", "event_types", "description", "failing_since", "disabled_reason"]
    readonly_fields = ["disabled_reason", "failing_since", "created_at", "updated_at"]
    actions = ["send_test", "rotate_secret"]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            webhook_endpoint_update(
                endpoint=obj,
                url=data["url"],
                event_types=data["event_types"],
                description=data["description"],
                enabled=data["enabled"],
                include_simulated=data["include_simulated"],
                actor=_actor(request),
            )
            return
        created = webhook_endpoint_create(
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
            enabled=data["enabled"],
            include_simulated=data["include_simulated"],
            actor=_actor(request),
        )
        obj.pk = created.pk
        messages.warning(request, f"Signing secret (shown once, keep it): {created.secret}")

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint, actor=_actor(request))

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset:
            webhook_test_send(endpoint=endpoint, schema_name=current_schema())
        messages.info(request, "Test messages queued: see Webhook messages for their attempts.")

    @admin.action(description="Rotate the signing secret (the old one signs for a grace period)")
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset:
            rotated = webhook_endpoint_rotate_secret(endpoint=endpoint, actor=_actor(request))
            messages.warning(request, f"New secret of {rotated.url} (shown once): {rotated.secret}")


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookMessage]):
    """Attempts are the log of what happened: read only."""

    model = WebhookAttempt
    fields = ["attempted_at", "succeeded", "status_code", "latency_ms", "error", "response_excerpt"]
    readonly_fields = ["attempted_at", "succeeded", "status_code", "latency_ms", "error", "response_excerpt"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookMessage, site=tenant_admin_site)
class WebhookMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[WebhookMessage]):  # type: ignore[misc]
    list_display = ["created_at", "event_type", "sequence", "endpoint", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Deliver again")
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        for message in queryset.select_related("endpoint"):
            try:
                webhook_message_redeliver(message=message, schema_name=current_schema(), actor=_actor(request))
            except ApplicationError as error:
                messages.error(request, f"{message}: {error.message}")
