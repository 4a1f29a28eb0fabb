"""The periodic sweep of one tenant (Celery beat, every second): nothing waits or stays stuck
because a task was lost, a worker died or Redis restarted.

1. Waiting calls past ``max_wait_seconds`` become ABANDONED.
2. Wrap-ups that are over end (the agent takes the next call or idles).
3. Simulated calls more than a couple of seconds past their expected end are completed (their
   Celery task was lost, or no worker is running).
Calls of a virtual-clock run, and its agents' wrap-ups, are left to that run's driver: their
instants are simulated ones, not comparable with the wall clock.
4. Repair: idle agents and waiting calls are paired (only possible after an undone claim).
5. Drift: if Redis and Postgres disagree twice in a row (a second apart, so in-flight changes are
   not mistaken for drift), Redis is rebuilt from Postgres.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from django.core.cache import cache
from django.db.models import DurationField, F, Func, Q, QuerySet, Value

from agents.models import Agent
from assignment.services.assign import match_waiting_calls
from assignment.services.config import routing_config
from assignment.services.identity import instance_verify
from assignment.services.recovery import engine_drift, engine_rebuild, with_repair
from assignment.services.release import wrap_up_finish
from callcenter import clock
from callcenter.tenancy import current_schema
from calls.models import Call
from calls.services import call_abandon

logger = logging.getLogger(__name__)

VIRTUAL = "virtual"  # SimulationRun.Clock.VIRTUAL: runs on a simulated clock, driven by their own process

T = TypeVar("T")


@dataclass
class SweepReport:
    abandoned: int = 0
    wrap_ups_ended: int = 0
    paired: int = 0
    overdue_completed: int = 0
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)


def calls_waiting_too_long(*, now: datetime.datetime, max_wait_seconds: int) -> QuerySet[Call, uuid.UUID]:
    """Waiting calls past the wait limit. A simulated call's limit is in simulated seconds: it waits
    ``max_wait_seconds / time_scale`` real seconds."""
    real_limit = now - datetime.timedelta(seconds=max_wait_seconds)
    simulated_limit = Value(now) - Func(
        Value(float(max_wait_seconds)) / F("simulation_run__time_scale"),
        template="make_interval(secs => %(expressions)s)",
        output_field=DurationField(),
    )
    return (
        Call.objects.filter(status=Call.Status.QUEUED)
        .exclude(simulation_run__clock=VIRTUAL)  # its driver abandons it at its simulated instant
        .exclude(simulation_run__settings_overrides__has_key="max_wait_seconds")  # run without a wait limit
        .filter(
            Q(simulation_run__isnull=True, queued_at__lte=real_limit)
            | Q(simulation_run__isnull=False, queued_at__lte=simulated_limit)
        )
        .order_by("queued_at")
        .values_list("id", flat=True)
    )


def sweep_tenant(*, now: datetime.datetime | None = None, check_drift: bool = True) -> SweepReport:
    """One sweep of the current tenant. Each item is its own change: one that fails (a conflict is
    repaired by a rebuild and retried once; anything else is logged) never stops the others, and
    the drift check always runs last."""
    from simulation.selectors import simulation_runs_active
    from simulation.services import simulated_call_finish, simulated_calls_overdue

    # Never sweep another deployment's Redis (raises ForeignEngine, which says why).
    instance_verify()
    now = now or clock.now()
    report = SweepReport()
    settings = routing_config().settings
    try:
        for call_id in calls_waiting_too_long(now=now, max_wait_seconds=settings.max_wait_seconds)[:1000]:
            if _item(report, "abandon", partial(call_abandon, call_id=call_id)):
                report.abandoned += 1
        wrap_ups = Agent.objects.filter(status=Agent.Status.WRAP_UP, wrap_up_ends_at__lte=now)
        if simulation_runs_active().filter(clock=VIRTUAL).exists():
            wrap_ups = wrap_ups.filter(simulated=False)  # a virtual run ends its agents' wrap-ups itself
        for agent_id in wrap_ups.values_list("id", flat=True)[:1000]:
            if _item(report, "wrap-up", partial(wrap_up_finish, agent_id=agent_id, now=now)):
                report.wrap_ups_ended += 1
        for call_id in simulated_calls_overdue(now=now):
            finish = partial(simulated_call_finish, call_id=call_id, end_reason="completed_by_sweep")
            if _item(report, "overdue", finish):
                report.overdue_completed += 1
        report.paired = _item(report, "match", match_waiting_calls) or 0
    finally:
        if check_drift:
            report.rebuilt = _repair_drift(report)
    return report


def _item(report: SweepReport, what: str, operation: Callable[[], T]) -> T | None:
    try:
        return with_repair(operation)
    except Exception as error:  # one stuck item must not stop the sweep of the rest
        logger.exception("sweep: %s failed", what)
        report.notes.append(f"{what}: {error}")
        return None


def _repair_drift(report: SweepReport) -> bool:
    """Rebuild when some difference between Redis and Postgres is seen in two consecutive sweeps.
    Changes in flight show up once and are gone the next second; a lasting difference stays, even
    while new short-lived ones come and go around it."""
    drift = engine_drift()
    key = f"sweep-drift:{current_schema()}"
    items = drift.items()
    if not items:
        cache.delete(key)
        return False
    previous = set(cache.get(key) or ())
    lasting = items & previous
    if not lasting:
        cache.set(key, sorted(items), 30)
        return False
    logger.warning("engine drift persisted (%s); rebuilding from Postgres", drift.summary())
    report.notes.append(drift.summary())
    cache.delete(key)
    engine_rebuild()
    return True
