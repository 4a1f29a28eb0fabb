"""Live simulations started and stopped by a person (the supervisor dashboard).

A live run is a ``SimulationRun`` with ``source="dashboard"``: while it is RUNNING, a chain of
Celery tasks (``simulation.tasks.simulation_live_tick``) creates Poisson arrivals through the same
services as the API, each call completing itself through Celery like every simulated call. The
run ends when someone stops it (STOPPED) or when its last planned call has arrived (FINISHED);
calls already in progress finish on their own.

Invariant: a dashboard run starts only while no other run of the tenant is going on (from the
dashboard or ``simulate``; a run is going on while RUNNING and heard from: each tick touches it),
and every arrival is created at most once: the tick passes its position along the chain,
and each call carries ``external_id = sim:<run>:<sequence>``, so a tick that runs twice (a task
redelivered after a worker died) replays the same calls instead of adding new ones.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from agents.services import agent_set_status
from assignment.models import ROUTING_SETTINGS_ID, RoutingSettings
from audit.services import audit_record
from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from calls.services import call_create
from routing.services import routing_config
from simulation.models import SimulationRun
from simulation.runner import ensure_agents, ensure_agents_available
from simulation.selectors import simulation_runs_active
from simulation.services import SIMULATOR

logger = logging.getLogger(__name__)

LIVE_SOURCE = "dashboard"
# A tick comes at least this often, even when no arrival is due, to touch the run: a run not heard
# from for ``SimulationRun.HEARTBEAT_TIMEOUT_SECONDS`` counts as over (its chain was lost).
TICK_HEARTBEAT_SECONDS = 5.0
# Arrivals created by one tick at most (a tick that ran late catches up over the next ones).
TICK_MAX_ARRIVALS = 200


@dataclass(frozen=True)
class LiveParameters:
    """What a person chooses for a live run (ranges checked by ``simulation_start``)."""

    agents: int = 20
    calls_per_hour: float = 300.0  # simulated arrivals per simulated hour
    time_scale: float = 10.0  # simulated seconds per real second
    calls: int | None = None  # stop after this many arrivals; None runs until stopped
    seed: int | None = None


LIMITS = {
    "agents": (1, 1000),
    "calls_per_hour": (1.0, 100_000.0),
    "time_scale": (1.0, 1000.0),
    "calls": (1, 1_000_000),
}


def _check(parameters: LiveParameters) -> None:
    errors = []
    for name, (low, high) in LIMITS.items():
        value = getattr(parameters, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            errors.append({"field": name, "message": f"must lie between {low} and {high}", "code": "out_of_range"})
    if errors:
        raise ApplicationError(
            code="validation_error",
            message="; ".join(f"{e['field']} {e['message']}" for e in errors),
            errors=errors,
        )


def simulation_running() -> SimulationRun | None:
    """A run of the tenant going on (from the dashboard or ``simulate``), heard from lately."""
    return simulation_runs_active().order_by("-started_at").first()


def simulation_dashboard_run_running() -> SimulationRun | None:
    """The dashboard's RUNNING run, even one whose ticks stopped (so that it can still be stopped)."""
    return (
        SimulationRun.objects.filter(source=LIVE_SOURCE, status=SimulationRun.Status.RUNNING)
        .order_by("-started_at")
        .first()
    )


def _staff(count: int) -> None:
    """Exactly ``count`` simulated agents in the line: the first ``count`` AVAILABLE, the others
    OFFLINE (one on a call keeps it; it joins the line again when the call ends)."""
    agents = ensure_agents(count)
    ensure_agents_available(agents)
    chosen = {agent.id for agent in agents}
    for extra in Agent.objects.filter(simulated=True).exclude(id__in=chosen).exclude(status=Agent.Status.OFFLINE):
        if extra.status != Agent.Status.BUSY:
            agent_set_status(agent=extra, status=Agent.Status.OFFLINE, actor=SIMULATOR)


def simulation_start(*, parameters: LiveParameters, actor: Actor) -> SimulationRun:
    """Start a live run in the current tenant: the simulation agents are made AVAILABLE, the run is
    recorded RUNNING, and the first tick is queued once that commits. 409 ``simulation_running``
    while another dashboard run is RUNNING."""
    _check(parameters)
    if simulation_running() is not None:
        raise ApplicationError(
            code="simulation_running", message="A simulation is already running; stop it first.", status=409
        )
    _staff(parameters.agents)
    seed = parameters.seed if parameters.seed is not None else int(uuid.uuid4().int % 2**31)
    schema_name = current_schema()
    with transaction.atomic():
        # The check is repeated under the tenant's settings row lock (a one-row table every tenant
        # has), so two starts at once make one run; the lock lasts this short transaction.
        RoutingSettings.objects.select_for_update().filter(id=ROUTING_SETTINGS_ID).first()
        if simulation_running() is not None:
            raise ApplicationError(
                code="simulation_running", message="A simulation is already running; stop it first.", status=409
            )
        run = SimulationRun.objects.create(
            seed=seed,
            strategy=routing_config().settings.strategy,
            rate_per_second=parameters.calls_per_hour / 3600.0,
            time_scale=parameters.time_scale,
            calls_planned=parameters.calls,
            agents=parameters.agents,
            source=LIVE_SOURCE,
            clock=SimulationRun.Clock.LIVE,
            kind=SimulationRun.Kind.RUN,
            status=SimulationRun.Status.RUNNING,
        )
        audit_record(
            actor=actor,
            action="simulation.start",
            obj=run,
            after={
                "agents": parameters.agents,
                "calls_per_hour": parameters.calls_per_hour,
                "time_scale": parameters.time_scale,
                "calls": parameters.calls,
                "seed": seed,
            },
        )
        transaction.on_commit(lambda: _queue_tick(schema_name, run.id, 0, _gap(run, 0), countdown=0.0))
    return run


def simulation_stop(*, run: SimulationRun, actor: Actor) -> SimulationRun:
    """Stop a RUNNING run: no more arrivals; calls in progress finish on their own. 409
    ``simulation_not_running`` when it already ended."""
    with transaction.atomic():
        stopped = SimulationRun.objects.filter(id=run.id, status=SimulationRun.Status.RUNNING).update(
            status=SimulationRun.Status.STOPPED, finished_at=timezone.now(), updated_at=timezone.now()
        )
        if not stopped:
            raise ApplicationError(code="simulation_not_running", message="This simulation is not running.", status=409)
        run.refresh_from_db()
        audit_record(
            actor=actor, action="simulation.stop", obj=run, before={"status": "RUNNING"}, after={"status": run.status}
        )
    return run


def _gap(run: SimulationRun, sequence: int) -> float:
    """Real seconds between arrival ``sequence - 1`` and arrival ``sequence``: exponential, drawn
    from the run's seed and the arrival's number (so a replayed tick draws the same)."""
    rng = np.random.default_rng([run.seed & 0xFFFFFFFFFFFFFFFF, sequence, 3])
    return float(rng.exponential(1.0 / run.rate_per_second)) / run.time_scale


def _queue_tick(schema_name: str, run_id: uuid.UUID, sequence: int, offset: float, countdown: float) -> None:
    from simulation.tasks import simulation_live_tick

    try:
        simulation_live_tick.apply_async(args=(schema_name, str(run_id), sequence, offset), countdown=countdown)
    except Exception:  # the broker is down: the run cannot go on, say so
        logger.exception("could not queue the next arrival of simulation %s; stopping it", run_id)
        SimulationRun.objects.filter(id=run_id, status=SimulationRun.Status.RUNNING).update(
            status=SimulationRun.Status.STOPPED, finished_at=timezone.now()
        )


def simulation_live_advance(*, run_id: uuid.UUID | str, sequence: int, offset: float) -> tuple[int, float] | None:
    """Create the arrivals of a RUNNING run that are due (arrival ``sequence`` is due ``offset``
    real seconds after the run started), then return where the next tick starts, or None when the
    run is over (stopped, or its last planned call arrived: then it is marked FINISHED)."""
    run = SimulationRun.objects.filter(id=run_id).defer("report").first()
    if run is None or run.status != SimulationRun.Status.RUNNING:
        return None
    config = routing_config()
    call_types = sorted(config.call_types_by_slug.values(), key=lambda c: c.slug)
    weights = np.array([c.mix_weight for c in call_types], dtype=float)
    weights = weights / weights.sum()
    SimulationRun.objects.filter(id=run.id, status=SimulationRun.Status.RUNNING).update(updated_at=timezone.now())
    elapsed = (timezone.now() - run.started_at).total_seconds()
    created = 0
    while offset <= elapsed and created < TICK_MAX_ARRIVALS:
        if run.calls_planned is not None and sequence >= run.calls_planned:
            break
        rng = np.random.default_rng([run.seed & 0xFFFFFFFFFFFFFFFF, sequence, 4])
        call_create(
            phone_number=f"+3469{sequence % 10**8:08d}",
            call_type=call_types[int(rng.choice(len(call_types), p=weights))],
            priority=int(rng.integers(0, 3)),
            external_id=f"sim:{run.id}:{sequence}",
            actor=SIMULATOR,
            simulation_run=run,
            simulation_sequence=sequence,
        )
        sequence += 1
        created += 1
        offset += _gap(run, sequence)
    if run.calls_planned is not None and sequence >= run.calls_planned:
        SimulationRun.objects.filter(id=run.id, status=SimulationRun.Status.RUNNING).update(
            status=SimulationRun.Status.FINISHED, finished_at=timezone.now(), updated_at=timezone.now()
        )
        return None
    return sequence, offset


def simulation_live_tick_run(*, run_id: str, sequence: int, offset: float) -> None:
    """One tick of the chain: advance the run, then queue the next tick for the next arrival."""
    position = simulation_live_advance(run_id=run_id, sequence=sequence, offset=offset)
    if position is None:
        return
    run = SimulationRun.objects.only("started_at").get(id=run_id)
    wait = position[1] - (timezone.now() - run.started_at).total_seconds()
    countdown = min(TICK_HEARTBEAT_SECONDS, max(0.0, wait))
    _queue_tick(current_schema(), uuid.UUID(run_id), position[0], position[1], countdown=countdown)
