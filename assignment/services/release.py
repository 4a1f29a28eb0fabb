"""An agent's state changes: free (takes the next waiting call or idles), off (OFFLINE, BREAK,
WRAP_UP), removed; and a call's end, which frees its agent.

Locking policy: every change of one agent runs in a transaction that first locks the agent's row
(``select_for_update``), so Redis and Postgres apply that agent's changes in the same order; the
engine call runs inside that transaction, just before it commits, and a failed engine call rolls the
Postgres change back. (New calls do not take this lock: they use a conditional update instead, see
``assign``.) If the commit itself fails after Redis changed, the sweep's drift check repairs Redis.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable

from django.db import transaction

from agents.events import agent_status_changed
from agents.models import Agent
from assignment import engine
from assignment.models import Assignment
from assignment.services.assign import record_queued_assignment
from assignment.services.config import RoutingConfig
from assignment.services.recovery import AgentConflict, engine_call
from callcenter import clock
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from calls.events import call_event_record
from calls.models import Call
from events.services import events_batch

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
    agent.save(update_fields=AGENT_STATE_FIELDS)
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
            strategy="queue",
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


def call_end(
    *,
    call_id: uuid.UUID | str,
    final_status: str,
    end_reason: str,
    outcome: str | None = None,
    draw_outcome: Callable[[Call, Agent], str] | None = None,
    next_agent_status: str | None = None,
) -> tuple[Call, bool]:
    """End an ASSIGNED call (COMPLETED or CANCELLED) and free its agent: wrap-up if the tenant has
    one, else available (taking the next waiting call), or ``next_agent_status`` when forced.
    ``draw_outcome(call, agent)`` gives the outcome when ``outcome`` is None.

    Idempotent: returns ``(call, False)`` when the call had already ended with this status.
    """
    from assignment.services.config import routing_config

    with transaction.atomic(), events_batch():
        # The call's row only (not its call type's): its type is read, never changed, here.
        call = Call.objects.select_for_update(of=("self",)).select_related("call_type").filter(id=call_id).first()
        if call is None:
            raise ApplicationError(code="call_not_found", message="No such call.", status=404)
        if call.status != Call.Status.ASSIGNED:
            if call.status == final_status:
                return call, False
            raise ApplicationError(
                code="invalid_call_state",
                message=f"The call is {call.status}; only an active (ASSIGNED) call can end this way.",
                status=409,
            )
        now = clock.now()
        assert call.agent_id is not None  # an ASSIGNED call has an agent (check constraint)
        agent = agent_lock(agent_id=call.agent_id)
        assert call.assigned_at is not None
        talk_seconds = max(0.0, (now - call.assigned_at).total_seconds())
        if final_status == Call.Status.COMPLETED and outcome is None and draw_outcome is not None:
            outcome = draw_outcome(call, agent)
        call.status = final_status
        call.end_reason = end_reason
        call.ended_at = now
        call.outcome = outcome if final_status == Call.Status.COMPLETED else None
        call.actual_duration_seconds = talk_seconds
        call.save(
            update_fields=["status", "end_reason", "ended_at", "outcome", "actual_duration_seconds", "updated_at"]
        )
        call_event_record(call)
        Assignment.objects.filter(call_id=call.id, ended_at__isnull=True).update(ended_at=now)
        # The agent's row is locked: its counters are updated here and saved with its new status.
        agent.calls_handled += 1
        agent.calls_ok += 1 if call.outcome == Call.Outcome.OK else 0
        agent.calls_ko += 1 if call.outcome == Call.Outcome.KO else 0
        agent.talk_time_seconds += talk_seconds
        wrap_up = routing_config().settings.wrap_up_seconds
        if next_agent_status == Agent.Status.AVAILABLE:
            agent_make_available(agent=agent, idle_since=now, expected_call_id=str(call.id))
        elif next_agent_status is not None:
            agent_take_off(agent=agent, status=next_agent_status, expected_call_id=str(call.id))
        elif wrap_up > 0:
            agent_take_off(
                agent=agent,
                status=Agent.Status.WRAP_UP,
                expected_call_id=str(call.id),
                wrap_up_ends_at=now + datetime.timedelta(seconds=wrap_up),
            )
        else:
            agent_make_available(agent=agent, idle_since=now, expected_call_id=str(call.id))
    return call, True


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
