"""Factories for tests. Agents and calls go through the services (so Redis knows them); plain rows
come from factory_boy."""

from __future__ import annotations

from agents.models import Agent, AgentType
from agents.services import agent_create
from callcenter.actors import Actor
from calls.models import Call, CallType
from calls.services import call_create

TEST_ACTOR = Actor.system("test")


def make_agent(
    *,
    name: str = "agent",
    agent_type: str = "agente_tipo_1",
    status: str = Agent.Status.AVAILABLE,
    simulated: bool = False,
) -> Agent:
    """An agent; a ``simulated`` one takes simulated calls only (as a simulation's agents do)."""
    return agent_create(
        name=name,
        agent_type=AgentType.objects.get(slug=agent_type),
        status=status,
        simulated=simulated,
        actor=TEST_ACTOR,
    )


_phone = iter(range(10**6))


def make_call(
    *, call_type: str = "llamada_tipo_1", priority: int = 0, phone_number: str | None = None, **kwargs: object
) -> Call:
    number = phone_number or f"+3460{next(_phone):07d}"
    return call_create(
        phone_number=number,
        call_type=CallType.objects.get(slug=call_type),
        priority=priority,
        actor=TEST_ACTOR,
        **kwargs,  # type: ignore[arg-type]
    ).call
