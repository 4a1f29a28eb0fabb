from __future__ import annotations

from django.db.models import QuerySet

from events.models import OutboxEvent


def outbox_pending(*, limit: int = 500) -> QuerySet[OutboxEvent]:
    """Events not dispatched yet, oldest first (served by the ``outbox_pending`` partial index)."""
    return OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("occurred_at", "sequence")[:limit]


def outbox_of(*, object_type: str, object_id: object) -> QuerySet[OutboxEvent]:
    """One object's events in order."""
    return OutboxEvent.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("sequence")
