from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from agents.models import Agent, AgentType
from agents.services import agent_create, agent_update
from audit.services import Actor
from callcenter.admin_sites import tenant_admin_site


@admin.register(AgentType, site=tenant_admin_site)
class AgentTypeAdmin(admin.ModelAdmin[AgentType]):
    list_display = ("slug", "name", "updated_at")
    search_fields = ("slug", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("slug",) if obj else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new type needs its whole matrix row: POST /agent-types does that in one step.
        return False


@admin.register(Agent, site=tenant_admin_site)
class AgentAdmin(admin.ModelAdmin[Agent]):
    list_display = ("name", "agent_type", "status", "idle_since", "calls_handled", "calls_ok", "calls_ko")
    list_filter = ("status", "agent_type")
    search_fields = ("name",)
    fields = (
        "name",
        "agent_type",
        "status",
        "idle_since",
        "calls_handled",
        "calls_ok",
        "calls_ko",
        "talk_time_seconds",
    )
    readonly_fields = ("status", "idle_since", "calls_handled", "calls_ok", "calls_ko", "talk_time_seconds")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # DELETE /agents/{id} checks the agent is not on a call

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        actor = Actor.user(getattr(request.user, "username", "admin"))
        # Goes through the services, so Redis learns about the agent too.
        if change:
            agent_update(agent=obj, name=obj.name, agent_type=obj.agent_type, actor=actor)
        else:
            created = agent_create(name=obj.name, agent_type=obj.agent_type, actor=actor)
            obj.pk = created.pk
