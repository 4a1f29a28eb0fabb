from __future__ import annotations

import uuid

from django.db import models


class SimulationRun(models.Model):
    """One simulated traffic run of a tenant. Its calls point to it; their durations and outcomes are
    drawn from ``seed`` and the call id, so a run is reproducible."""

    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        FINISHED = "FINISHED"
        STOPPED = "STOPPED"

    class Clock(models.TextChoices):
        # A discrete-event simulation on a simulated clock: reproducible, no waiting (``simulate``).
        VIRTUAL = "virtual"
        # Real time, calls completed by Celery (``simulate --live``, ``demo``, the dashboard).
        LIVE = "live"

    class Kind(models.TextChoices):
        RUN = "run"  # one traffic run; ``report`` is its statistical report
        STAFFING = "staffing"  # a staffing sweep; ``report["staffing"]`` holds the curve (docs/simulation.md)

    # A run whose driver has not written for this long is over (its process died): it no longer
    # blocks another run, and cleanup may remove it. Drivers touch ``updated_at`` every second or so.
    HEARTBEAT_TIMEOUT_SECONDS = 60

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seed = models.BigIntegerField()
    strategy = models.CharField(max_length=20)
    rate_per_second = models.FloatField(help_text="arrivals per simulated second")
    time_scale = models.FloatField(help_text="simulated seconds per real second")
    calls_planned = models.PositiveIntegerField(null=True, blank=True)
    agents = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    source = models.CharField(max_length=20, default="simulate")  # simulate, demo, dashboard
    clock = models.CharField(max_length=8, choices=Clock.choices, default=Clock.LIVE)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RUN)
    # Routing settings the run used in place of the tenant's (strategy, duration model, wait limit...);
    # applied in every process that handles the run's calls, never written to the tenant.
    settings_overrides = models.JSONField(default=dict, blank=True)
    # False when the driver completes the calls itself (no Celery worker): no tasks are queued then.
    complete_with_celery = models.BooleanField(default=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        started = f"{self.started_at:%Y-%m-%d %H:%M}"
        return f"{self.source} {self.kind} ({self.clock}) {started} seed={self.seed} {self.status}"
