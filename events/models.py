"""The outbox: what happened in a tenant, one row per domain event, written in the same transaction
as the change it records (so an event exists if and only if its change committed)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class OutboxEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=64)  # call.assigned, agent.status_changed, config.changed, ...
    occurred_at = models.DateTimeField()
    tenant = models.CharField(max_length=63)  # the schema name: a dispatcher needs no search_path to know it
    object_type = models.CharField(max_length=32)  # call, agent, config
    object_id = models.CharField(max_length=64)
    # 1, 2, 3... per (object_type, object_id): the order of one object's events, whatever the clock says.
    sequence = models.PositiveIntegerField()
    payload = models.JSONField()  # the object as the API shows it, at the moment of the event
    # Set once every outbox consumer (webhooks...) has taken the event; see events.services.outbox_dispatch.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["occurred_at", "object_type", "object_id", "sequence"]
        constraints = [
            # One object's events are numbered without gaps or twins; the writer's
            # MAX(sequence) + 1 lookup runs on this index.
            models.UniqueConstraint(fields=["object_type", "object_id", "sequence"], name="outbox_sequence_per_object"),
        ]
        indexes = [
            # The dispatcher's query: events not dispatched yet, oldest first.
            models.Index(fields=["occurred_at"], condition=Q(dispatched_at__isnull=True), name="outbox_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.object_type}:{self.object_id}#{self.sequence}"
