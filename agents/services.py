"""Agent writes. Each change of one agent is atomic in Postgres and Redis together (see
``assignment.services.release`` for the locking policy)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from agents.models import Agent, AgentType
from assignment.services.recovery import with_repair
from assignment.services.release import agent_lock, agent_make_available, agent_take_off, call_end
from audit.services import Actor, audit_record
from callcenter import clock
from callcenter.errors import ApplicationError
from calls.models import Call

# "AVAILABLE, BREAK or OFFLINE", for messages (a list of the enum members would print their reprs).
_CLIENT_SETTABLE_WORDS = " or ".join(
    [", ".join(sorted(str(status) for status in Agent.CLIENT_SETTABLE)[:-1]), max(map(str, Agent.CLIENT_SETTABLE))]
)


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
            active = (
                Call.objects.filter(agent_id=agent.id, status=Call.Status.ASSIGNED).values_list("id", flat=True).first()
            )
            if active is not None:
                # Locks the call, then the agent (the same order as every call end).
                try:
                    _, ended_here = call_end(
                        call_id=active,
                        final_status=Call.Status.COMPLETED,
                        end_reason="agent_forced_status",
                        next_agent_status=status,
                    )
                except ApplicationError as error:
                    if error.code != "invalid_call_state":
                        raise
                    ended_here = False
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
