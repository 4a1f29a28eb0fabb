from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from callcenter.formatting import type_label


class AgentType(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return type_label(name=self.name, slug=self.slug)


class Agent(models.Model):
    """An agent. ``idle_since`` is the idle clock (docs/assignment.md): the moment the agent last
    became AVAILABLE. Redis decides who is free; this row records it (see ``assignment.engine``)."""

    class Status(models.TextChoices):
        OFFLINE = "OFFLINE"
        AVAILABLE = "AVAILABLE"
        BUSY = "BUSY"
        WRAP_UP = "WRAP_UP"
        BREAK = "BREAK"

    CLIENT_SETTABLE = frozenset({Status.OFFLINE, Status.AVAILABLE, Status.BREAK})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    agent_type = models.ForeignKey(AgentType, on_delete=models.PROTECT, related_name="agents")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE)
    idle_since = models.DateTimeField(null=True, blank=True)
    wrap_up_ends_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    calls_handled = models.PositiveIntegerField(default=0)
    calls_ok = models.PositiveIntegerField(default=0)
    calls_ko = models.PositiveIntegerField(default=0)
    talk_time_seconds = models.FloatField(default=0.0)
    # Created by a simulation: takes simulated calls only (its own pool in the engine), and
    # ``cleanup`` may remove it. Set at creation, never changed.
    simulated = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["OFFLINE", "AVAILABLE", "BUSY", "WRAP_UP", "BREAK"]),
                name="agent_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="AVAILABLE") | Q(idle_since__isnull=False),
                name="agent_available_has_idle_since",
            ),
            models.CheckConstraint(
                condition=~Q(status="WRAP_UP") | Q(wrap_up_ends_at__isnull=False),
                name="agent_wrap_up_has_end",
            ),
        ]
        indexes = [
            # GET /agents/available: available agents, longest idle first (ties by id).
            models.Index(fields=["status", "idle_since", "id"], name="agent_status_idle_idx"),
            # The sweeper: wrap-ups that are over.
            models.Index(fields=["wrap_up_ends_at"], name="agent_wrap_up_end_idx", condition=Q(status="WRAP_UP")),
        ]

    def __str__(self) -> str:
        return self.name
