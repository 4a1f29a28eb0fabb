from __future__ import annotations

import uuid

from django.db.models import QuerySet

from agents.models import Agent


def agent_list(*, status: str | None = None, agent_type: str | None = None) -> QuerySet[Agent]:
    agents = Agent.objects.select_related("agent_type").order_by("created_at", "id")
    if status:
        agents = agents.filter(status=status)
    if agent_type:
        agents = agents.filter(agent_type__slug=agent_type)
    return agents


def agent_list_available() -> QuerySet[Agent]:
    """Available agents, longest idle first (smallest idle_since, ties to the lower id)."""
    return Agent.objects.select_related("agent_type").filter(status=Agent.Status.AVAILABLE).order_by("idle_since", "id")


def agent_get(*, agent_id: uuid.UUID | str) -> Agent | None:
    return Agent.objects.select_related("agent_type").filter(id=agent_id).first()
