"""The periodic sweep of one tenant (Celery beat, every second): nothing waits or stays stuck
because a task was lost, a worker died or Redis restarted.

1. Waiting calls past ``max_wait_seconds`` become ABANDONED.
2. Wrap-ups that are over end (the agent takes the next call or idles).
3. Simulated calls more than a couple of seconds past their expected end are completed (their
   Celery task was lost, or no worker is running).
4. Repair: idle agents and waiting calls are paired (only possible after an undone claim).
5. Drift: if Redis and Postgres disagree twice in a row (a second apart, so in-flight changes are
   not mistaken for drift), Redis is rebuilt from Postgres.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import DurationField, F, Func, Q, QuerySet, Value
from django.utils import timezone

from agents.models import Agent
from assignment.services.assign import match_waiting_calls
from assignment.services.config import routing_config
from assignment.services.recovery import engine_drift, engine_rebuild, with_repair
from assignment.services.release import wrap_up_finish
from callcenter.tenancy import current_schema
from calls.models import Call
from calls.services import call_abandon

logger = logging.getLogger(__name__)


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
        .filter(
            Q(simulation_run__isnull=True, queued_at__lte=real_limit)
            | Q(simulation_run__isnull=False, queued_at__lte=simulated_limit)
        )
        .order_by("queued_at")
        .values_list("id", flat=True)
    )


def sweep_tenant(*, now: datetime.datetime | None = None, check_drift: bool = True) -> SweepReport:
    now = now or timezone.now()
    report = SweepReport()
    settings = routing_config().settings
    for call_id in calls_waiting_too_long(now=now, max_wait_seconds=settings.max_wait_seconds)[:1000]:
        if call_abandon(call_id=call_id):
            report.abandoned += 1
    for agent_id in Agent.objects.filter(status=Agent.Status.WRAP_UP, wrap_up_ends_at__lte=now).values_list(
        "id", flat=True
    )[:1000]:
        if wrap_up_finish(agent_id=agent_id, now=now):
            report.wrap_ups_ended += 1
    from simulation.services import simulated_call_finish, simulated_calls_overdue

    for call_id in simulated_calls_overdue(now=now):
        if simulated_call_finish(call_id=call_id, end_reason="completed_by_sweep"):
            report.overdue_completed += 1
    report.paired = with_repair(match_waiting_calls)
    if check_drift:
        report.rebuilt = _repair_drift(report)
    return report


def _repair_drift(report: SweepReport) -> bool:
    drift = engine_drift()
    key = f"sweep-drift:{current_schema()}"
    if not drift:
        cache.delete(key)
        return False
    signature = (
        repr(sorted(drift.agents.items())) + repr(drift.queue_missing_in_redis) + repr(drift.queue_extra_in_redis)
    )
    previous = cache.get(key)
    if previous != signature:
        cache.set(key, signature, 30)
        return False
    logger.warning("engine drift persisted (%s); rebuilding from Postgres", drift.summary())
    report.notes.append(drift.summary())
    cache.delete(key)
    engine_rebuild()
    return True
