"""Simulated calls: planning their duration when they are assigned, and completing them on time.

A simulated call (``call.simulation_run`` set) gets its duration drawn when it is assigned and
stored as ``planned_duration_seconds`` (simulated seconds) and ``expected_end_at`` (real time:
``assigned_at + duration / time_scale``). A Celery task completes it then; the sweep completes any
call more than ``OVERDUE_GRACE`` late, so a lost task or a dead worker never strands an agent.
Completion is idempotent.
"""

from __future__ import annotations

import datetime
import logging
import uuid

from django.db import transaction
from django.utils import timezone

from assignment.services.config import routing_config
from audit.services import Actor
from callcenter.tenancy import current_schema
from calls.models import Call
from simulation.draws import draw_duration, draw_outcome

logger = logging.getLogger(__name__)

OVERDUE_GRACE = datetime.timedelta(seconds=2)
SIMULATOR = Actor.system("simulator")


def simulated_call_plan(
    *, call_id: uuid.UUID, sequence: int, seed: int, time_scale: float, assigned_at: datetime.datetime
) -> tuple[float, datetime.datetime]:
    """Draw the call's duration; returns (simulated seconds, real expected end). Schedules the
    completion task once the surrounding transaction commits."""
    settings = routing_config().settings
    duration = draw_duration(
        seed=seed,
        sequence=sequence,
        model=settings.duration_model,
        mean=settings.duration_mean_seconds,
        std=settings.duration_std_seconds,
        low=settings.duration_min_seconds,
        high=settings.duration_max_seconds,
    )
    expected_end = assigned_at + datetime.timedelta(seconds=duration / time_scale)
    schema_name = current_schema()
    transaction.on_commit(lambda: _schedule_completion(schema_name, call_id, expected_end))
    return duration, expected_end


def _schedule_completion(schema_name: str, call_id: uuid.UUID, expected_end: datetime.datetime) -> None:
    from simulation.tasks import complete_simulated_call

    delay = max(0.0, (expected_end - timezone.now()).total_seconds())
    try:
        complete_simulated_call.apply_async(args=(schema_name, str(call_id)), countdown=delay)
    except Exception:  # the broker is down: the sweep completes the call when it is overdue
        logger.warning("could not schedule the completion of call %s; the sweep will complete it", call_id)


def simulated_call_finish(*, call_id: uuid.UUID | str, end_reason: str = "completed") -> bool:
    """Complete a simulated call with its drawn outcome. Idempotent: False if it already ended."""
    from calls.services import call_complete

    call = Call.objects.select_related("agent", "simulation_run").filter(id=call_id).first()
    if call is None or call.status != Call.Status.ASSIGNED or call.simulation_run is None or call.agent is None:
        return False
    p_ok = routing_config().p_ok[(call.agent.agent_type_id, call.call_type_id)]
    outcome = draw_outcome(seed=call.simulation_run.seed, sequence=call.simulation_sequence or 0, p_ok=p_ok)
    _, changed = call_complete(call=call, outcome=outcome, end_reason=end_reason, actor=SIMULATOR)
    return changed


def simulated_calls_overdue(*, now: datetime.datetime | None = None, limit: int = 1000) -> list[uuid.UUID]:
    cutoff = (now or timezone.now()) - OVERDUE_GRACE
    return list(
        Call.objects.filter(status=Call.Status.ASSIGNED, simulation_run__isnull=False, expected_end_at__lte=cutoff)
        .order_by("expected_end_at")
        .values_list("id", flat=True)[:limit]
    )
