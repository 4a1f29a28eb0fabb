"""An agent's domain events: the payload is the agent as the REST API shows it."""

from __future__ import annotations

from typing import Any

from agents.models import Agent
from callcenter.formatting import api_datetime
from events import registry
from events.services import event_record
from routing.services import routing_config


def agent_payload(agent: Agent, *, agent_type_slug: str | None = None) -> dict[str, Any]:
    """The fields of ``AgentOutputSerializer``, without a query when ``agent_type_slug`` is given."""
    return {
        "id": str(agent.id),
        "name": agent.name,
        "agent_type": agent_type_slug if agent_type_slug is not None else agent.agent_type.slug,
        "status": str(agent.status),
        "idle_since": api_datetime(agent.idle_since),
        "wrap_up_ends_at": api_datetime(agent.wrap_up_ends_at),
        "status_changed_at": api_datetime(agent.status_changed_at),
        "calls_handled": agent.calls_handled,
        "calls_ok": agent.calls_ok,
        "calls_ko": agent.calls_ko,
        "talk_time_seconds": agent.talk_time_seconds,
        "simulated": agent.simulated,
        "created_at": api_datetime(agent.created_at),
        "updated_at": api_datetime(agent.updated_at),
    }


def agent_status_changed(agent: Agent, *, agent_type_slug: str | None = None) -> None:
    """Record agent.status_changed (inside the change's transaction, with the agent's new fields).
    The type's slug comes from the loaded relation, else from the cached routing configuration."""
    if agent_type_slug is None and not Agent.agent_type.is_cached(agent):
        agent_type = routing_config().agent_types_by_id.get(agent.agent_type_id)
        agent_type_slug = agent_type.slug if agent_type is not None else None
    event_record(
        event_type=registry.AGENT_STATUS_CHANGED,
        object_type="agent",
        object_id=agent.id,
        subject=agent,
        payload=lambda: agent_payload(agent, agent_type_slug=agent_type_slug),
    )
