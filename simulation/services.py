"""Simulated calls: planning their duration when they are assigned, and completing them on time.

A simulated call (``call.simulation_run`` set) gets its duration drawn when it is assigned and
stored as ``planned_duration_seconds`` (simulated seconds) and ``expected_end_at`` (real time:
``assigned_at + duration / time_scale``). A Celery task completes it then; the sweep completes any
call more than ``OVERDUE_GRACE`` late, so a lost task or a dead worker never strands an agent.
Completion is idempotent.

On the simulated clock the driver's event queue takes Celery's place: inside
``completions_scheduled_by(schedule)``, every simulated call assigned (a new call's claim, or a
waiting call handed to a freed agent) is handed to ``schedule(call_id, expected_end)`` once its
transaction commits, exactly where a live run queues its completion task. The driver learns what
the services did without asking Postgres again.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from callcenter import clock
from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from calls.models import Call
from events.registry import Event
from routing.services import routing_config, routing_overrides
from simulation.draws import draw_duration, draw_outcome
from simulation.models import SimulationRun

logger = logging.getLogger(__name__)

OVERDUE_GRACE = datetime.timedelta(seconds=2)
SIMULATOR = Actor.system("simulator")

CompletionScheduler = Callable[[uuid.UUID, datetime.datetime], None]
_completion_scheduler: ContextVar[CompletionScheduler | None] = ContextVar("completion_scheduler", default=None)


@contextmanager
def completions_scheduled_by(schedule: CompletionScheduler) -> Iterator[None]:
    """Within the block (this context only), ``schedule(call_id, expected_end)`` is called for every
    simulated call assigned, once the transaction that assigned it commits (never for a claim that
    rolled back). The virtual driver's event queue, in place of Celery's countdown."""
    token = _completion_scheduler.set(schedule)
    try:
        yield
    finally:
        _completion_scheduler.reset(token)


def simulated_call_plan(
    *,
    call_id: uuid.UUID,
    sequence: int,
    seed: int,
    time_scale: float,
    assigned_at: datetime.datetime,
    schedule: bool = True,
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
    if schedule:
        schema_name = current_schema()
        transaction.on_commit(lambda: _schedule_completion(schema_name, call_id, expected_end))
    scheduler = _completion_scheduler.get()
    if scheduler is not None:
        transaction.on_commit(lambda: scheduler(call_id, expected_end))
    return duration, expected_end


def simulated_call_plan_on_assignment(event: Event) -> None:
    """In-transaction consumer of call.assigned: a simulated call gets its duration drawn and its
    completion scheduled (on commit); a real call is left alone."""
    call = event.subject
    if not isinstance(call, Call) or call.simulation_run_id is None or call.assigned_at is None:
        return
    run = call.simulation_run
    assert run is not None
    call.planned_duration_seconds, call.expected_end_at = simulated_call_plan(
        call_id=call.id,
        sequence=call.simulation_sequence or 0,
        seed=run.seed,
        time_scale=run.time_scale,
        assigned_at=call.assigned_at,
        schedule=run.complete_with_celery,
    )


def _schedule_completion(schema_name: str, call_id: uuid.UUID, expected_end: datetime.datetime) -> None:
    from simulation.tasks import complete_simulated_call

    delay = max(0.0, (expected_end - timezone.now()).total_seconds())
    try:
        complete_simulated_call.apply_async(args=(schema_name, str(call_id)), countdown=delay)
    except Exception:  # the broker is down: the sweep completes the call when it is overdue
        logger.warning("could not schedule the completion of call %s; the sweep will complete it", call_id)


def simulated_call_finish(
    *, call_id: uuid.UUID | str, end_reason: str = "completed", run: SimulationRun | None = None
) -> bool:
    """Complete a simulated call with its drawn outcome. Idempotent: False if it already ended.

    ``run``: the call's run, when the caller has it (the virtual driver, with the run's settings
    already in force); the outcome is then drawn from the call and agent that ``call_complete``
    locks, without reading them first."""
    from calls.services import call_complete

    if run is not None:
        return _simulated_call_finish_in_run(call_id=call_id, end_reason=end_reason, run=run)
    call = Call.objects.select_related("agent", "simulation_run").filter(id=call_id).first()
    if call is None or call.status != Call.Status.ASSIGNED or call.simulation_run is None or call.agent is None:
        return False
    # The run's settings (its duration model for the next call this agent takes, its wrap-up...).
    with routing_overrides(call.simulation_run.settings_overrides):
        p_ok = routing_config().p_ok[(call.agent.agent_type_id, call.call_type_id)]
        outcome = draw_outcome(seed=call.simulation_run.seed, sequence=call.simulation_sequence or 0, p_ok=p_ok)
        try:
            _, changed = call_complete(call_id=call.id, outcome=outcome, end_reason=end_reason, actor=SIMULATOR)
        except ApplicationError:  # hung up or ended meanwhile: nothing to complete
            return False
    return changed


def _simulated_call_finish_in_run(*, call_id: uuid.UUID | str, end_reason: str, run: SimulationRun) -> bool:
    from agents.models import Agent
    from calls.services import call_complete

    def draw(call: Call, agent: Agent) -> str:
        if call.simulation_run_id != run.id:
            raise ApplicationError(code="invalid_call_state", message="The call belongs to another run.", status=409)
        p_ok = routing_config().p_ok[(agent.agent_type_id, call.call_type_id)]
        return draw_outcome(seed=run.seed, sequence=call.simulation_sequence or 0, p_ok=p_ok)

    with routing_overrides(run.settings_overrides):
        try:
            _, changed = call_complete(call_id=call_id, draw=draw, end_reason=end_reason, actor=SIMULATOR)
        except ApplicationError:  # hung up or ended meanwhile, or not this run's: nothing to complete
            return False
    return changed


def simulated_calls_overdue(*, now: datetime.datetime | None = None, limit: int = 1000) -> list[uuid.UUID]:
    cutoff = (now or clock.now()) - OVERDUE_GRACE
    return list(
        Call.objects.filter(status=Call.Status.ASSIGNED, simulated=True, expected_end_at__lte=cutoff)
        .exclude(simulation_run__clock=SimulationRun.Clock.VIRTUAL)  # completed by its driver
        .order_by("expected_end_at")
        .values_list("id", flat=True)[:limit]
    )


def _removable() -> tuple[QuerySet[Any, Any], QuerySet[Any, Any], QuerySet[Any, Any]]:
    """What ``cleanup`` may remove: the runs that are over, with their calls and the other finished
    simulated calls, and the simulated agents holding no open call while no run is going on.
    Everything is selected by the ``simulated`` field, never by name."""
    from agents.models import Agent
    from simulation.selectors import simulation_runs_active

    running = simulation_runs_active()
    runs = SimulationRun.objects.exclude(id__in=running.values("id")).exclude(
        Exists(Call.objects.filter(simulation_run=OuterRef("id"), status__in=Call.OPEN))
    )
    calls = Call.objects.filter(simulated=True).filter(
        Q(simulation_run__in=runs) | Q(simulation_run__isnull=True, status__in=Call.TERMINAL)
    )
    agents = Agent.objects.filter(simulated=True).exclude(
        Exists(Call.objects.filter(agent_id=OuterRef("id"), status__in=Call.OPEN))
    )
    if running.exists():
        agents = agents.none()  # they serve the run that is going on
    return runs, calls, agents


def simulation_data_summary() -> dict[str, int]:
    """What ``cleanup`` would remove, and what it keeps because it is in use."""
    from agents.models import Agent

    runs, calls, agents = _removable()
    summary = {"runs": runs.count(), "calls": calls.count(), "agents": agents.count()}
    summary["runs_kept"] = SimulationRun.objects.count() - summary["runs"]
    summary["calls_kept"] = Call.objects.filter(simulated=True).count() - summary["calls"]
    summary["agents_kept"] = Agent.objects.filter(simulated=True).count() - summary["agents"]
    return summary


def simulation_data_remove() -> dict[str, int]:
    """Delete what simulations created and no longer use (``_removable``): finished runs and their
    calls, simulated agents holding no open call. A run still going on, its calls and agents, and an
    agent with an open call are kept. Real agents and calls are never touched. Then the tenant's
    Redis state is rebuilt from what is left."""
    from assignment.services.recovery import engine_rebuild

    with transaction.atomic():
        runs, calls, agents = _removable()
        removed = {"calls": calls.count(), "runs": runs.count(), "agents": agents.count()}
        calls.delete()
        runs.delete()
        # Their finished calls were simulated and are gone; an open call's agent is PROTECTed.
        agents.delete()
    engine_rebuild()
    return removed


def tenant_status() -> dict[str, Any]:
    """What ``manage.py status`` shows of a tenant: its live state, today's calls, the last run."""
    from assignment.selectors import tenant_live_state

    state = tenant_live_state()
    last = SimulationRun.objects.order_by("-started_at").first()
    return {
        **state,
        "calls_today": Call.objects.filter(created_at__date=state["time"].date()).count(),
        "last_run": str(last) if last else "",
    }


def _simulation_sweep_items(now: datetime.datetime) -> Iterator[Callable[[], bool]]:
    from agents.models import Agent
    from agents.services import wrap_up_finish
    from simulation.selectors import simulation_runs_active

    # A virtual run ends its agents' wrap-ups itself, at its simulated instants.
    if not simulation_runs_active().filter(clock=SimulationRun.Clock.VIRTUAL).exists():
        due = Agent.objects.filter(status=Agent.Status.WRAP_UP, wrap_up_ends_at__lte=now, simulated=True)
        for agent_id in due.values_list("id", flat=True)[:1000]:
            yield partial(wrap_up_finish, agent_id=agent_id, now=now)


def _overdue_items(now: datetime.datetime) -> Iterator[Callable[[], bool]]:
    for call_id in simulated_calls_overdue(now=now):
        yield partial(simulated_call_finish, call_id=call_id, end_reason="completed_by_sweep")


def simulation_sweep_steps_register() -> None:
    from assignment.services.sweep import SweepStep, sweep_step_register

    sweep_step_register(
        SweepStep(name="wrap-up (simulated)", counter="wrap_ups_ended", order=21, items=_simulation_sweep_items)
    )
    sweep_step_register(SweepStep(name="overdue", counter="overdue_completed", order=30, items=_overdue_items))
