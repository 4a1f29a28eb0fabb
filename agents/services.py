"""Agent writes: create, update, delete, status changes, and the transitions every one of them (and
a call's end) goes through: free (takes the next waiting call or idles), off (OFFLINE, BREAK,
WRAP_UP), removed.

Locking policy: every change of one agent runs in a transaction that first locks the agent's row
(``select_for_update``), so Redis and Postgres apply that agent's changes in the same order; the
engine call runs inside that transaction, just before it commits, and a failed engine call rolls the
Postgres change back. (New calls do not take this lock: they use a conditional update instead, see
``assignment.services.assign``.) If the commit itself fails after Redis changed, the sweep's drift
check repairs Redis.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from django.db import transaction

from agents.events import agent_status_changed
from agents.models import Agent, AgentType
from assignment import engine
from assignment.services.assign import record_queued_assignment
from assignment.services.recovery import AgentConflict, engine_call, with_repair
from assignment.services.sweep import SweepStep, sweep_step_register
from audit.services import audit_record
from callcenter import clock
from callcenter.actors import Actor
from callcenter.db.writes import update_fields
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from routing.services import RoutingConfig, routing_config

# "AVAILABLE, BREAK or OFFLINE", for messages (a list of the enum members would print their reprs).
_CLIENT_SETTABLE_WORDS = " or ".join(
    [", ".join(sorted(str(status) for status in Agent.CLIENT_SETTABLE)[:-1]), max(map(str, Agent.CLIENT_SETTABLE))]
)


# Everything about an agent that its changes write (its row is locked while they do).
AGENT_STATE_FIELDS = [
    "status",
    "idle_since",
    "wrap_up_ends_at",
    "status_changed_at",
    "agent_type",
    "calls_handled",
    "calls_ok",
    "calls_ko",
    "talk_time_seconds",
    "updated_at",
]


def agent_lock(*, agent_id: uuid.UUID | str) -> Agent:
    """Lock and return an agent row (inside a transaction), with its type (read, not locked: an
    event's payload names it)."""
    agent = Agent.objects.select_for_update(of=("self",)).select_related("agent_type").filter(id=agent_id).first()
    if agent is None:
        raise ApplicationError(code="agent_not_found", message="No such agent.", status=404)
    return agent


def agent_make_available(*, agent: Agent, idle_since: datetime.datetime, expected_call_id: str | None = None) -> Agent:
    """Make a locked agent free: it takes the oldest highest-priority waiting call, or joins the idle
    line with ``idle_since``. Call inside the transaction that locked ``agent``."""
    started = time.perf_counter()
    previous = agent.status
    agent.status = Agent.Status.AVAILABLE
    agent.idle_since = idle_since
    agent.wrap_up_ends_at = None
    agent.status_changed_at = clock.now()
    update_fields(agent, AGENT_STATE_FIELDS)
    expected = expected_call_id
    for _ in range(100):

        def run(cfg: RoutingConfig, expected: str | None = expected) -> engine.ReleaseResult:
            return engine.release(
                schema_name=current_schema(),
                agent_id=str(agent.id),
                agent_type_id=agent.agent_type_id,
                idle_since_ms=engine.to_ms(idle_since.timestamp()),
                expected_call_id=expected,
                type_ids=cfg.type_ids,
                simulated=agent.simulated,
            )

        released = engine_call(run)
        if released.outcome == "IDLE":
            if previous != agent.status:
                agent_status_changed(agent)
            return agent
        if released.outcome == "ALREADY":
            # Already free in Redis: keep its place in the line (its original idle clock).
            if released.idle_since_ms is not None:
                agent.idle_since = datetime.datetime.fromtimestamp(released.idle_since_ms / 1000, tz=datetime.UTC)
                agent.save(update_fields=["idle_since", "updated_at"])
            if previous != agent.status:
                agent_status_changed(agent)
            return agent
        if released.outcome == "MISMATCH":
            raise AgentConflict(str(agent.id))
        assert released.call_id is not None
        if record_queued_assignment(
            call_id=released.call_id,
            agent_id=str(agent.id),
            candidates=1,
            started=started,
            # The agent was the one freed and the call the head of the queue: recorded under the
            # strategy the tenant routes with (a Strategy choice, like every assignment).
            strategy=routing_config().settings.strategy,
            simulated=agent.simulated,
        ):
            agent.refresh_from_db()
            return agent
        # That call is gone (cancelled, abandoned, never committed): take the next one.
        expected = released.call_id
    raise ApplicationError(code="engine_busy", message="Could not settle the agent; try again.", status=503)


def agent_take_off(
    *, agent: Agent, status: str, expected_call_id: str | None = None, wrap_up_ends_at: datetime.datetime | None = None
) -> Agent:
    """Take a locked agent out of the line: OFFLINE, BREAK or WRAP_UP (or REMOVED before a delete).
    Raises ``agent_busy`` (409) if Redis says it holds a call other than ``expected_call_id``."""

    def run(cfg: RoutingConfig) -> engine.SetStatusResult:
        return engine.set_status(
            schema_name=current_schema(),
            agent_id=str(agent.id),
            status=status,
            agent_type_id=agent.agent_type_id,
            expected_call_id=expected_call_id,
            type_ids=cfg.type_ids,
            simulated=agent.simulated,
        )

    previous = agent.status
    if status != "REMOVED":
        agent.status = status
        agent.wrap_up_ends_at = wrap_up_ends_at if status == Agent.Status.WRAP_UP else None
        agent.status_changed_at = clock.now()
        agent.save(update_fields=AGENT_STATE_FIELDS)
    result = engine_call(run)
    if result.outcome == "BUSY" and expected_call_id is not None:
        # Postgres says the agent holds expected_call_id, Redis another call: a disagreement.
        raise AgentConflict(str(agent.id))
    if result.outcome == "BUSY":
        raise ApplicationError(
            code="agent_busy",
            message="The agent is on a call; end the call first or pass force=true.",
            status=409,
        )
    if status != "REMOVED" and previous != status:
        agent_status_changed(agent)
    return agent


def wrap_up_finish(*, agent_id: uuid.UUID | str, now: datetime.datetime | None = None) -> bool:
    """End an agent's wrap-up if it is over: the agent becomes available with idle_since = the end
    of wrap-up (call end + wrap_up_seconds). Idempotent; False when there was nothing to do."""
    with transaction.atomic():
        agent = agent_lock(agent_id=agent_id)
        if agent.status != Agent.Status.WRAP_UP or agent.wrap_up_ends_at is None:
            return False
        if agent.wrap_up_ends_at > (now or clock.now()):
            return False
        agent_make_available(agent=agent, idle_since=agent.wrap_up_ends_at)
    return True


# Ending the call an agent holds belongs to the call lifecycle (``calls``), which builds on the
# transitions above; it registers its function here at start-up (``calls.apps``), so that this module
# never imports it. The function ends the agent's active call (COMPLETED, no outcome) giving the agent
# ``next_agent_status``; it returns the call's id (None when the agent holds none) and whether this
# call of it ended the call.
ActiveCallEnder = Callable[..., tuple[uuid.UUID | None, bool]]
_active_call_ender: list[ActiveCallEnder] = []


def agent_active_call_ender_register(ender: ActiveCallEnder) -> None:
    _active_call_ender[:] = [ender]


def _end_active_call(*, agent_id: uuid.UUID, next_agent_status: str) -> tuple[uuid.UUID | None, bool]:
    if not _active_call_ender:
        raise RuntimeError("no call lifecycle registered to end an agent's call (calls app not installed?)")
    return _active_call_ender[0](agent_id=agent_id, next_agent_status=next_agent_status)


def _agent_state(agent: Agent) -> dict[str, Any]:
    return {"name": agent.name, "agent_type": agent.agent_type.slug, "status": agent.status}


def agent_create(
    *,
    name: str,
    agent_type: AgentType,
    status: str = Agent.Status.OFFLINE,
    simulated: bool = False,
    agent_id: uuid.UUID | None = None,
    actor: Actor,
) -> Agent:
    """Create an agent (OFFLINE by default). An agent created AVAILABLE may take a waiting call at once.
    A ``simulated`` agent (created by a simulation) takes simulated calls only, and real ones real calls;
    a simulation gives its agents ids of its own (``agent_id``) so that they are the same everywhere."""
    if status not in Agent.CLIENT_SETTABLE:
        raise ApplicationError(
            code="invalid_status",
            message=f"A new agent's status must be {_CLIENT_SETTABLE_WORDS}.",
            errors=[{"field": "status", "message": "not settable by a client", "code": "invalid_status"}],
        )

    def create() -> Agent:
        with transaction.atomic():
            agent = Agent.objects.create(
                id=agent_id or uuid.uuid4(),
                name=name,
                agent_type=agent_type,
                status=Agent.Status.OFFLINE,
                simulated=simulated,
            )
            agent = agent_lock(agent_id=agent.id)
            if status == Agent.Status.AVAILABLE:
                agent_make_available(agent=agent, idle_since=clock.now())
            else:
                agent_take_off(agent=agent, status=status)
            audit_record(actor=actor, action="agent.create", obj=agent, after=_agent_state(agent))
        return agent

    agent = with_repair(create)
    agent.agent_type = agent_type
    return agent


def agent_update(*, agent: Agent, name: str | None = None, agent_type: AgentType | None = None, actor: Actor) -> Agent:
    """Rename or retype. A retype needs the agent out of the line (OFFLINE, BREAK or WRAP_UP)."""

    def update() -> Agent:
        with transaction.atomic():
            locked = agent_lock(agent_id=agent.id)
            before = _agent_state(locked)
            if name is not None:
                locked.name = name
            if agent_type is not None and agent_type.id != locked.agent_type_id:
                if locked.status in (Agent.Status.AVAILABLE, Agent.Status.BUSY):
                    raise ApplicationError(
                        code="agent_not_off",
                        message="Set the agent OFFLINE or BREAK before changing its type.",
                        status=409,
                    )
                locked.agent_type = agent_type
                agent_take_off(agent=locked, status=locked.status, wrap_up_ends_at=locked.wrap_up_ends_at)
            locked.save(update_fields=["name", "agent_type", "updated_at"])
            after = _agent_state(locked)
            if before != after:
                audit_record(actor=actor, action="agent.update", obj=locked, before=before, after=after)
        return locked

    return with_repair(update)


def agent_delete(*, agent: Agent, actor: Actor) -> None:
    """Remove an agent; 409 while it holds a call. Its past calls keep their history (agent unset)."""

    def delete() -> None:
        with transaction.atomic():
            locked = agent_lock(agent_id=agent.id)
            if locked.status == Agent.Status.BUSY:
                raise ApplicationError(code="agent_busy", message="The agent is on a call.", status=409)
            agent_take_off(agent=locked, status="REMOVED")
            audit_record(actor=actor, action="agent.delete", obj=locked, before=_agent_state(locked))
            locked.delete()

    with_repair(delete)


def agent_set_status(*, agent: Agent, status: str, force: bool = False, actor: Actor) -> Agent:
    """Set OFFLINE, AVAILABLE or BREAK (SPEC §2). BUSY and WRAP_UP belong to the system (400).
    A busy agent gets 409 ``agent_busy`` unless ``force``: then its call is ended (COMPLETED, no
    outcome, end_reason ``agent_forced_status``) and the agent takes the new status.
    Coming back to AVAILABLE restarts the idle clock (a break does not keep one's place in line);
    setting AVAILABLE on an available agent changes nothing."""
    if status not in Agent.CLIENT_SETTABLE:
        raise ApplicationError(
            code="invalid_status_transition",
            message=f"A client may set {_CLIENT_SETTABLE_WORDS}; BUSY and WRAP_UP are set by the system.",
            errors=[{"field": "status", "message": "not settable by a client", "code": "invalid_status_transition"}],
        )

    def change() -> Agent:
        current = Agent.objects.filter(id=agent.id).values_list("status", flat=True).first()
        if current is None:
            raise ApplicationError(code="agent_not_found", message="No such agent.", status=404)
        if current == Agent.Status.BUSY:
            if not force:
                raise ApplicationError(
                    code="agent_busy",
                    message="The agent is on a call; end the call first or pass force=true.",
                    status=409,
                )
            active, ended_here = _end_active_call(agent_id=agent.id, next_agent_status=status)
            if active is not None:
                if not ended_here:
                    # The call ended some other way meanwhile (and the agent may already hold the
                    # next one): start over, so the agent still gets the status asked for.
                    return change()
                locked = Agent.objects.select_related("agent_type").get(id=agent.id)
                audit_record(
                    actor=actor,
                    action="agent.status",
                    obj=locked,
                    before={"status": Agent.Status.BUSY},
                    after={"status": locked.status, "forced": True, "ended_call": str(active)},
                )
                return locked
        with transaction.atomic():
            locked = agent_lock(agent_id=agent.id)
            before = locked.status
            if locked.status == Agent.Status.BUSY:
                raise ApplicationError(code="agent_busy", message="The agent just took a call.", status=409)
            if status == Agent.Status.AVAILABLE:
                if locked.status != Agent.Status.AVAILABLE:
                    agent_make_available(agent=locked, idle_since=clock.now())
            elif status != locked.status:
                agent_take_off(agent=locked, status=status)
            if before != locked.status:
                audit_record(
                    actor=actor,
                    action="agent.status",
                    obj=locked,
                    before={"status": before},
                    after={"status": locked.status},
                )
        return Agent.objects.select_related("agent_type").get(id=agent.id)

    return with_repair(change)


def _wrap_ups_due(now: datetime.datetime) -> Iterator[Callable[[], bool]]:
    """Real agents whose wrap-up is over (simulated ones are the simulation's: a virtual run ends
    them at its own simulated instants)."""
    due = Agent.objects.filter(status=Agent.Status.WRAP_UP, wrap_up_ends_at__lte=now, simulated=False)
    for agent_id in due.values_list("id", flat=True)[:1000]:
        yield partial(wrap_up_finish, agent_id=agent_id, now=now)


def agent_sweep_steps_register() -> None:
    sweep_step_register(SweepStep(name="wrap-up", counter="wrap_ups_ended", order=20, items=_wrap_ups_due))
