"""Call writes: create (claim an agent), complete, cancel or hang up, abandon."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from agents.models import Agent
from assignment import engine
from assignment.services.assign import assign_new_call
from assignment.services.config import routing_config
from assignment.services.recovery import engine_call, with_repair
from assignment.services.release import call_end
from audit.services import Actor
from callcenter import clock
from callcenter.errors import ApplicationError
from calls.models import Call, CallType
from calls.selectors import call_find_retry
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
            if _leave_queue(call_id=call.id, status=Call.Status.CANCELLED, end_reason="cancelled"):
                break
            continue  # it was just handed to an agent: hang up instead
        if current == Call.Status.ASSIGNED:
            try:
                with_repair(lambda: call_end(call_id=call.id, final_status=Call.Status.CANCELLED, end_reason="hung_up"))
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


def _leave_queue(*, call_id: uuid.UUID | str, status: str, end_reason: str) -> bool:
    """A waiting call ends without an agent (CANCELLED or ABANDONED). False if it is no longer waiting."""
    with transaction.atomic():
        now = clock.now()
        waiting = Call.objects.filter(id=call_id, status=Call.Status.QUEUED)
        simulated = waiting.values_list("simulated", flat=True).first()
        if simulated is None or waiting.update(status=status, end_reason=end_reason, ended_at=now) == 0:
            return False

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
