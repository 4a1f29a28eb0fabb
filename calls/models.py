from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import SET_NULL, Field, ProtectedError, Q
from django.db.models.deletion import Collector
from django.utils import timezone

from callcenter.fields import EncryptedTextField, mask_phone
from callcenter.formatting import type_label


class CallType(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    # Share of simulated arrivals of this type (weights are normalised over all call types).
    mix_weight = models.FloatField(default=0.25)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=Q(mix_weight__gte=0), name="calltype_mix_weight_nonneg")]

    def __str__(self) -> str:
        return type_label(name=self.name, slug=self.slug)


def protect_open_calls(collector: Collector, field: Field[Any, Any], sub_objs: Any, using: str) -> None:
    """``on_delete`` of ``Call.agent``: an agent holding an open call cannot be deleted (as PROTECT);
    its finished calls keep their history with the agent unset (as SET_NULL)."""
    open_calls = sub_objs.filter(status__in=Call.OPEN)
    if open_calls.exists():
        raise ProtectedError("The agent holds an open call; end the call before deleting the agent.", open_calls)
    SET_NULL(collector, field, sub_objs, using)


protect_open_calls.lazy_sub_objs = True  # type: ignore[attr-defined]  # sub_objs arrive as a lazy queryset


class Call(models.Model):
    """A call. Every call ends in exactly one terminal state (COMPLETED, CANCELLED, ABANDONED or
    SATURATED); QUEUED and ASSIGNED are the only open ones."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        ASSIGNED = "ASSIGNED"
        COMPLETED = "COMPLETED"
        CANCELLED = "CANCELLED"
        ABANDONED = "ABANDONED"
        SATURATED = "SATURATED"

    class Outcome(models.TextChoices):
        OK = "OK"
        KO = "KO"

    OPEN = frozenset({Status.QUEUED, Status.ASSIGNED})
    TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED, Status.ABANDONED, Status.SATURATED})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone_number = EncryptedTextField()
    # Indexed with created_at below (call_type_created_idx), which also serves the foreign key.
    call_type = models.ForeignKey(CallType, on_delete=models.PROTECT, related_name="calls", db_index=False)
    priority = models.PositiveSmallIntegerField(default=0)
    # NULL (not "") when absent, so that the partial unique constraints below ignore it.
    external_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, editable=False)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True, default="", editable=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    end_reason = models.CharField(max_length=32, blank=True, default="")
    # Indexed with created_at below (call_agent_created_idx), which also serves the foreign key.
    agent = models.ForeignKey(
        "agents.Agent", on_delete=protect_open_calls, null=True, blank=True, related_name="calls", db_index=False
    )
    # Set by the service to the same instant as queued_at/assigned_at (not auto_now_add).
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    assignment_time_ms = models.FloatField(null=True, blank=True)
    planned_duration_seconds = models.FloatField(null=True, blank=True)
    expected_end_at = models.DateTimeField(null=True, blank=True)
    actual_duration_seconds = models.FloatField(null=True, blank=True)
    # NULL until the call is COMPLETED with an outcome (a check constraint ties the two).
    # Set for simulated calls: their durations and outcomes are drawn, and they complete by themselves.
    simulation_run = models.ForeignKey(
        "simulation.SimulationRun", on_delete=models.CASCADE, null=True, blank=True, related_name="calls"
    )
    # The call's place in its run's arrivals: its draws come from (run seed, this number).
    simulation_sequence = models.PositiveIntegerField(null=True, blank=True)
    # A simulated call: only ever handed to a simulated agent (its own pool in the engine). Every
    # call of a simulation run is simulated (check constraint); ``cleanup`` selects by this field.
    simulated = models.BooleanField(default=False, editable=False)
    outcome = models.CharField(max_length=2, choices=Outcome.choices, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["QUEUED", "ASSIGNED", "COMPLETED", "CANCELLED", "ABANDONED", "SATURATED"]),
                name="call_status_valid",
            ),
            models.CheckConstraint(condition=Q(priority__gte=0, priority__lte=9), name="call_priority_0_9"),
            models.CheckConstraint(
                condition=~Q(status="ASSIGNED") | (Q(agent__isnull=False) & Q(assigned_at__isnull=False)),
                name="call_assigned_has_agent",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["QUEUED", "ASSIGNED"]) | Q(ended_at__isnull=False),
                name="call_terminal_has_ended_at",
            ),
            models.CheckConstraint(
                condition=Q(outcome__isnull=True) | Q(status="COMPLETED"), name="call_outcome_only_completed"
            ),
            models.CheckConstraint(
                condition=Q(simulation_run__isnull=True) | Q(simulated=True), name="call_of_a_run_is_simulated"
            ),
            # An agent holds at most one call at a time.
            models.UniqueConstraint(fields=["agent"], condition=Q(status="ASSIGNED"), name="call_one_active_per_agent"),
            # Integrator retries: one call per external id and per idempotency key.
            # A SATURATED call was refused: a retry is a new attempt, so it does not hold the id or key.
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False) & ~Q(status="SATURATED"),
                name="call_external_id_unique",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False) & ~Q(status="SATURATED"),
                name="call_idempotency_key_unique",
            ),
        ]
        indexes = [
            # GET /calls newest first, filtered by status.
            models.Index(fields=["status", "-created_at"], name="call_status_created_idx"),
            models.Index(fields=["-created_at"], name="call_created_idx"),
            # GET /calls?agent_id= and ?call_type=, newest first: a page costs the same however rarely
            # the filter matches among the stored calls (docs/performance-scale.md). They replace the
            # foreign keys' own indexes, so a write updates no more indexes than before.
            models.Index(fields=["agent", "-created_at"], name="call_agent_created_idx"),
            models.Index(fields=["call_type", "-created_at"], name="call_type_created_idx"),
            # The sweeper: queued calls waiting past max_wait_seconds.
            models.Index(fields=["queued_at"], name="call_queued_idx", condition=Q(status="QUEUED")),
            # cleanup: the simulated calls.
            models.Index(fields=["created_at"], name="call_simulated_idx", condition=Q(simulated=True)),
            # The sweeper: active calls past their expected end.
            models.Index(fields=["expected_end_at"], name="call_expected_end_idx", condition=Q(status="ASSIGNED")),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"

    @property
    def phone_number_masked(self) -> str:
        return mask_phone(self.phone_number or "")
