from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("created_at", "id")


def webhook_endpoints_disabled_by_failures(*, limit: int = 20) -> list[dict[str, Any]]:
    """Endpoints the delivery turned off after failing for days (not those a person disabled), most
    recent first: what the dashboard warns about."""
    rows = (
        WebhookEndpoint.objects.filter(enabled=False)
        .exclude(disabled_reason="")
        .order_by("-updated_at", "id")
        .values("id", "url", "disabled_reason", "updated_at")[:limit]
    )
    return [dict(row) for row in rows]


def webhook_endpoint_get(*, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(id=endpoint_id).first()


def webhook_endpoints_for(*, event_type: str) -> list[WebhookEndpoint]:
    """Enabled endpoints that want ``event_type`` (every type when their list is empty)."""
    return list(
        WebhookEndpoint.objects.filter(enabled=True).filter(
            Q(event_types__len=0) | Q(event_types__contains=[event_type])
        )
    )


def webhook_message_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookMessage]:
    """An endpoint's messages, newest first, each with its attempts (oldest first)."""
    return (
        WebhookMessage.objects.filter(endpoint=endpoint)
        .order_by("-created_at", "id")
        .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("attempted_at", "id")))
    )


def webhook_message_get(*, endpoint: WebhookEndpoint, message_id: uuid.UUID) -> WebhookMessage | None:
    return webhook_message_list(endpoint=endpoint).filter(id=message_id).first()


def webhook_messages_due(*, now: datetime.datetime) -> QuerySet[WebhookMessage]:
    """PENDING messages whose attempt is due and that no task holds (the ``webhook_message_due`` index)."""
    return WebhookMessage.objects.filter(status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    )
