"""Call writes, the call's whole lifecycle: create (claim an agent), end (complete, hang up, the
agent's forced status change), cancel, abandon. Agent transitions are ``agents.services``'s; the
claim itself is the engine's (``assignment.services.assign``)."""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from agents.models import Agent
from agents.services import agent_make_available, agent_take_off
from assignment import engine
from assignment.services.assign import assign_new_call, assignment_end
from assignment.services.recovery import engine_call, engine_lock_shared_noted, engine_lock_shared_sql, with_repair
from assignment.services.sweep import SweepStep, sweep_step_register
from audit.services import audit_record
from callcenter import clock
from callcenter.actors import Actor
from callcenter.db.joined_lock import lock_joined
from callcenter.db.returning import update_returning
from callcenter.db.writes import update_fields
from callcenter.errors import ApplicationError
from calls.events import call_event_record
from calls.models import Call, CallType
from calls.selectors import call_find_retry, calls_waiting_too_long
from events.services import events_batch
from routing.services import routing_config
from simulation.models import SimulationRun

E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)  # used with fullmatch: no trailing newline


def request_fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CallCreation:
    call: Call
    replayed: bool

    @property
    def created_as(self) -> str:
        """The status the call had when it was created (what a replay must answer with again, even
        after the call moved on): SATURATED, QUEUED if it ever waited, else ASSIGNED."""
        if self.call.status == Call.Status.SATURATED:
            return Call.Status.SATURATED
        if self.call.queued_at is not None:
            return Call.Status.QUEUED
        if self.call.assigned_at is not None:
            return Call.Status.ASSIGNED
        return str(self.call.status)


def call_create(
    *,
    phone_number: str,
    call_type: CallType,
    priority: int = 0,
    external_id: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    received_at: float | None = None,
    actor: Actor,
    rng: random.Random | None = None,
    simulation_run: SimulationRun | None = None,
    simulation_sequence: int | None = None,
) -> CallCreation:
    """Create a call and hand it to the longest-idle agent (or the tenant's strategy), queue it, or
    reject it as SATURATED, atomically (see ``assignment.services.assign``).

    A retry with the same ``Idempotency-Key`` (or the same ``external_id``) returns the first call;
    the same key with a different body is a 422.
    """
    received_at = time.perf_counter() if received_at is None else received_at
    if not E164.fullmatch(phone_number):
        raise ApplicationError(
            code="invalid_phone_number",
            message="phone_number must be in E.164 format, e.g. +34600123456.",
            errors=[{"field": "phone_number", "message": "not E.164", "code": "invalid_phone_number"}],
        )
    if not 0 <= priority <= 9:
        raise ApplicationError(code="validation_error", message="priority must be between 0 and 9.")
    existing = _retry_of(idempotency_key=idempotency_key, external_id=external_id, fingerprint=fingerprint)
    if existing is not None:
        return CallCreation(call=existing, replayed=True)
    call = Call(
        id=uuid.uuid4(),
        simulation_run=simulation_run,
        simulation_sequence=simulation_sequence,
        simulated=simulation_run is not None,
        phone_number=phone_number,
        call_type=call_type,
        priority=priority,
        external_id=external_id or None,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
    )
    try:
        call = assign_new_call(call=call, config=routing_config(), received_at=received_at, rng=rng)
    except IntegrityError:
        # A concurrent retry won the race for the same key or external id: answer with its call.
        existing = _retry_of(idempotency_key=idempotency_key, external_id=external_id, fingerprint=fingerprint)
        if existing is None:
            raise
        return CallCreation(call=existing, replayed=True)
    return CallCreation(call=call, replayed=False)


def _retry_of(*, idempotency_key: str | None, external_id: str | None, fingerprint: str) -> Call | None:
    existing = call_find_retry(idempotency_key=idempotency_key, external_id=external_id)
    if existing is None:
        return None
    if idempotency_key and existing.idempotency_key == idempotency_key and existing.request_fingerprint != fingerprint:
        raise ApplicationError(
            code="idempotency_key_reused",
            message="This Idempotency-Key was used with a different request body.",
            status=422,
        )
    return existing


def outcome_draw(*, call: Call, agent: Agent, rng: random.Random | None = None) -> str:
    """OK with probability matrix[agent type][call type]."""
    p_ok = routing_config().p_ok[(agent.agent_type_id, call.call_type_id)]
    return Call.Outcome.OK if (rng or random).random() < p_ok else Call.Outcome.KO


def call_complete(
    *,
    call_id: uuid.UUID | str,
    outcome: str | None = None,
    rng: random.Random | None = None,
    draw: Callable[[Call, Agent], str] | None = None,
    end_reason: str = "completed",
    actor: Actor,
) -> tuple[Call, bool]:
    """End an active call as COMPLETED (outcome drawn from the matrix when omitted, with ``rng``, or
    by ``draw(call, agent)`` given the locked call and its agent) and free the agent. Idempotent:
    completing a completed call again (with no outcome or the same one) returns it unchanged with
    ``False``; another outcome than the recorded one is a 409 (a retry must not look like it changed
    the outcome), any other state a 409, an unknown id a 404."""
    call, changed = with_repair(
        lambda: call_end(
            call_id=call_id,
            final_status=Call.Status.COMPLETED,
            end_reason=end_reason,
            outcome=outcome,
            draw_outcome=draw or (lambda call, agent: outcome_draw(call=call, agent=agent, rng=rng)),
            actor=actor,
        )
    )
    if not changed and outcome is not None and call.outcome != outcome:
        raise ApplicationError(
            code="call_already_completed",
            message=f"The call was already completed with outcome {call.outcome}; it cannot change.",
            status=409,
        )
    return call, changed


def call_cancel(*, call: Call, actor: Actor) -> Call:
    """Cancel a waiting call, or hang up an active one (its agent is freed). Idempotent on CANCELLED."""
    for _ in range(3):
        current = Call.objects.filter(id=call.id).values_list("status", flat=True).first()
        if current == Call.Status.CANCELLED:
            break
        if current == Call.Status.QUEUED:
            if _leave_queue(call_id=call.id, status=Call.Status.CANCELLED, end_reason="cancelled", actor=actor):
                break
            continue  # it was just handed to an agent: hang up instead
        if current == Call.Status.ASSIGNED:
            try:
                with_repair(
                    lambda: call_end(
                        call_id=call.id, final_status=Call.Status.CANCELLED, end_reason="hung_up", actor=actor
                    )
                )
                break
            except ApplicationError as error:
                if error.code != "invalid_call_state":
                    raise
                continue
        raise ApplicationError(
            code="invalid_call_state", message=f"The call is {current}; it can no longer be cancelled.", status=409
        )
    refreshed = Call.objects.select_related("call_type", "agent").get(id=call.id)
    return refreshed


def _audit_end(*, call: Call, actor: Actor | None, before: str) -> None:
    """Who ended a call (completed, cancelled, hung up), in the audit log. Simulated calls are left
    out: the simulator ends thousands, and ``cleanup`` removes them (their events remain)."""
    if actor is None or call.simulated:
        return
    action = "call.complete" if call.status == Call.Status.COMPLETED else "call.cancel"
    after = {"status": str(call.status), "end_reason": call.end_reason, "outcome": call.outcome}
    audit_record(actor=actor, action=action, obj=call, before={"status": before}, after=after)


def _leave_queue(*, call_id: uuid.UUID | str, status: str, end_reason: str, actor: Actor | None = None) -> bool:
    """A waiting call ends without an agent (CANCELLED or ABANDONED). False if it is no longer waiting."""
    with transaction.atomic():
        now = clock.now()
        call = update_returning(
            Call,
            where={"id": call_id, "status": Call.Status.QUEUED},
            values={"status": status, "end_reason": end_reason, "ended_at": now, "updated_at": now},
        )
        if call is None:
            return False
        simulated = call.simulated
        call_event_record(call)
        _audit_end(call=call, actor=actor, before=Call.Status.QUEUED)

        def run(cfg: Any) -> bool:
            return engine.cancel(
                schema_name=cfg.schema_name, call_id=str(call_id), type_ids=cfg.type_ids, simulated=simulated
            )

        # Absent from the queue means a freed agent popped it a moment ago; that agent's
        # conditional update will find it CANCELLED/ABANDONED and take the next call.
        engine_call(run)
    return True


def call_abandon(*, call_id: uuid.UUID | str) -> bool:
    """A call that waited past max_wait_seconds becomes ABANDONED."""
    return _leave_queue(call_id=call_id, status=Call.Status.ABANDONED, end_reason="abandoned")


def call_end(
    *,
    call_id: uuid.UUID | str,
    final_status: str,
    end_reason: str,
    outcome: str | None = None,
    draw_outcome: Callable[[Call, Agent], str] | None = None,
    next_agent_status: str | None = None,
    actor: Actor | None = None,
) -> tuple[Call, bool]:
    """End an ASSIGNED call (COMPLETED or CANCELLED) and free its agent: wrap-up if the tenant has
    one, else available (taking the next waiting call), or ``next_agent_status`` when forced.
    ``draw_outcome(call, agent)`` gives the outcome when ``outcome`` is None. The end is audited
    in the same transaction when an ``actor`` is given (see ``_audit_end``).

    Idempotent: returns ``(call, False)`` when the call had already ended with this status.
    """
    from routing.services import routing_config

    with transaction.atomic(), events_batch():
        call = _call_and_agent_lock(call_id)
        if call is None:
            # No agent: the call never had one (waiting, saturated, abandoned) or does not exist.
            call = Call.objects.select_related("call_type").filter(id=call_id).first()
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
        agent = call.agent  # locked with the call (see _call_and_agent_lock)
        assert agent is not None and call.assigned_at is not None
        talk_seconds = max(0.0, (now - call.assigned_at).total_seconds())
        if final_status == Call.Status.COMPLETED and outcome is None and draw_outcome is not None:
            outcome = draw_outcome(call, agent)
        call.status = final_status
        call.end_reason = end_reason
        call.ended_at = now
        call.outcome = outcome if final_status == Call.Status.COMPLETED else None
        call.actual_duration_seconds = talk_seconds
        update_fields(call, ["status", "end_reason", "ended_at", "outcome", "actual_duration_seconds", "updated_at"])
        call_event_record(call)
        _audit_end(call=call, actor=actor, before=Call.Status.ASSIGNED)
        assignment_end(call_id=call.id, now=now)
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


def _call_and_agent_lock(call_id: uuid.UUID | str) -> Call | None:
    """Lock a call that has an agent, and its agent, in one round trip which also takes the
    tenant's shared engine lock (the end frees the agent in the engine): the rows of the call and
    the agent only, not those of their types, which are read, never changed, here. None when the
    call has no agent or does not exist."""
    try:
        uuid.UUID(str(call_id))
    except ValueError:
        return None
    call = lock_joined(
        Call,
        pk=call_id,
        related=("agent", "call_type", "agent__agent_type"),
        lock=("", "agent"),
        also=engine_lock_shared_sql(),
    )
    if call is not None:
        engine_lock_shared_noted()
    return call


def agent_active_call_end(*, agent_id: uuid.UUID, next_agent_status: str) -> tuple[uuid.UUID | None, bool]:
    """End the call ``agent_id`` holds (COMPLETED, no outcome, end_reason ``agent_forced_status``) and
    give the agent ``next_agent_status``. Returns the call's id (None when it holds none) and whether
    this ended it (False when it ended some other way meanwhile). Registered with ``agents.services``
    for a forced status change."""
    active = Call.objects.filter(agent_id=agent_id, status=Call.Status.ASSIGNED).values_list("id", flat=True).first()
    if active is None:
        return None, False
    try:
        _, ended_here = call_end(
            call_id=active,
            final_status=Call.Status.COMPLETED,
            end_reason="agent_forced_status",
            next_agent_status=next_agent_status,
        )
    except ApplicationError as error:
        if error.code != "invalid_call_state":
            raise
        ended_here = False
    return active, ended_here


def _calls_waiting_too_long(now: datetime.datetime) -> Iterator[Callable[[], bool]]:
    max_wait_seconds = routing_config().settings.max_wait_seconds
    for call_id in calls_waiting_too_long(now=now, max_wait_seconds=max_wait_seconds)[:1000]:
        yield partial(call_abandon, call_id=call_id)


def call_sweep_steps_register() -> None:
    sweep_step_register(SweepStep(name="abandon", counter="abandoned", order=10, items=_calls_waiting_too_long))
