"""Simulation reads."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet
from django.utils import timezone

from simulation.models import SimulationRun


def simulation_runs_active() -> QuerySet[SimulationRun]:
    """Runs going on: RUNNING and heard from lately (by wall clock: ``updated_at`` is the driver's
    heartbeat), so a run whose process died does not count."""
    fresh = timezone.now() - datetime.timedelta(seconds=SimulationRun.HEARTBEAT_TIMEOUT_SECONDS)
    return SimulationRun.objects.filter(status=SimulationRun.Status.RUNNING, updated_at__gte=fresh)


def simulation_run_latest(*, kind: str = SimulationRun.Kind.RUN) -> SimulationRun | None:
    """The newest finished run of a kind (the dashboard charts the latest staffing curve this way)."""
    return (
        SimulationRun.objects.filter(kind=kind, status=SimulationRun.Status.FINISHED, report__isnull=False)
        .order_by("-started_at")
        .first()
    )
