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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seed = models.BigIntegerField()
    strategy = models.CharField(max_length=20)
    rate_per_second = models.FloatField(help_text="arrivals per simulated second")
    time_scale = models.FloatField(help_text="simulated seconds per real second")
    calls_planned = models.PositiveIntegerField(null=True, blank=True)
    agents = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    source = models.CharField(max_length=20, default="simulate")  # simulate, demo, dashboard
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
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M} seed={self.seed} {self.status}"
