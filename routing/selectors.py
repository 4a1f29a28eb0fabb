"""Reads of the routing configuration, as the API shows it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agents.models import AgentType
from assignment.models import ROUTING_SETTINGS_ID, RoutingSettings
from calls.models import CallType
from routing.services import SETTINGS_FIELDS, routing_config


def config_get() -> dict[str, Any]:
    """The tenant's routing settings and call-type mix, as the API shows them."""
    settings = RoutingSettings.objects.get_or_create(id=ROUTING_SETTINGS_ID)[0]
    data: dict[str, Any] = {name: getattr(settings, name) for name in SETTINGS_FIELDS}
    data["call_type_mix"] = {c.slug: c.mix_weight for c in CallType.objects.order_by("slug")}
    data["updated_at"] = settings.updated_at
    return data


def conversion_matrix_get() -> dict[str, dict[str, float]]:
    return routing_config(force=True).matrix_by_slug()


def agent_type_list() -> QuerySet[AgentType]:
    return AgentType.objects.order_by("slug")


def agent_type_get(*, slug: str) -> AgentType | None:
    return AgentType.objects.filter(slug=slug).first()


def call_type_list() -> QuerySet[CallType]:
    return CallType.objects.order_by("slug")


def call_type_get(*, slug: str) -> CallType | None:
    return CallType.objects.filter(slug=slug).first()
