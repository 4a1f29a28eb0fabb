from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone

from agents.models import Agent, AgentType
from agents.services import agent_create, agent_set_status, agent_update
from callcenter.actors import Actor
from callcenter.admin_sites import tenant_admin_site
from callcenter.errors import ApplicationError
from callcenter.formatting import NOTHING, minutes_seconds
from calls.models import Call


@admin.register(AgentType, site=tenant_admin_site)
class AgentTypeAdmin(admin.ModelAdmin[AgentType]):
    list_display = ("name", "slug", "updated_at")
    search_fields = ("slug", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("slug",) if obj else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new type needs its whole matrix row: POST /agent-types does that in one step.
        return False


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "admin"))


def _set_status(
    modeladmin: admin.ModelAdmin[Agent], request: HttpRequest, queryset: QuerySet[Agent], status: str, force: bool
) -> None:
    """Each agent through ``agent_set_status`` (Redis and the audit log learn of it); a busy agent is
    left alone unless ``force`` (then its call ends), and the message says so."""
    changed = 0
    busy: list[str] = []
    failed: list[str] = []
    for agent in queryset:
        try:
            agent_set_status(agent=agent, status=status, force=force, actor=_actor(request))
            changed += 1
        except ApplicationError as error:
            (busy if error.code == "agent_busy" else failed).append(f"{agent.name} ({error.message})")
    if changed:
        modeladmin.message_user(request, f"{changed} agent(s) set {status}.", messages.SUCCESS)
    if busy:
        modeladmin.message_user(
            request,
            f'Left alone, on a call: {", ".join(busy[:10])}. Use "End their calls and set OFFLINE" to force.',
            messages.WARNING,
        )
    if failed:
        modeladmin.message_user(request, f"Not changed: {', '.join(failed[:10])}", messages.ERROR)


@admin.action(description="Set selected agents AVAILABLE")
def make_available(modeladmin: admin.ModelAdmin[Agent], request: HttpRequest, queryset: QuerySet[Agent]) -> None:
    _set_status(modeladmin, request, queryset, Agent.Status.AVAILABLE, force=False)


@admin.action(description="Put selected agents on BREAK")
def make_break(modeladmin: admin.ModelAdmin[Agent], request: HttpRequest, queryset: QuerySet[Agent]) -> None:
    _set_status(modeladmin, request, queryset, Agent.Status.BREAK, force=False)


@admin.action(description="Set selected agents OFFLINE")
def make_offline(modeladmin: admin.ModelAdmin[Agent], request: HttpRequest, queryset: QuerySet[Agent]) -> None:
    _set_status(modeladmin, request, queryset, Agent.Status.OFFLINE, force=False)


@admin.action(description="End their calls and set OFFLINE")
def force_offline(modeladmin: admin.ModelAdmin[Agent], request: HttpRequest, queryset: QuerySet[Agent]) -> None:
    _set_status(modeladmin, request, queryset, Agent.Status.OFFLINE, force=True)


@admin.register(Agent, site=tenant_admin_site)
class AgentAdmin(admin.ModelAdmin[Agent]):
    list_display = (
        "name",
        "agent_type",
        "status",
        "activity",
        "calls_handled",
        "conversion",
        "talk_time",
    )
    list_filter = ("status", "agent_type")
    list_select_related = ("agent_type",)
    search_fields = ("name",)
    actions = (make_available, make_break, make_offline, force_offline)
    fields = (
        "name",
        "agent_type",
        "status",
        "activity",
        "calls_handled",
        "calls_ok",
        "calls_ko",
        "talk_time",
    )
    readonly_fields = ("status", "activity", "calls_handled", "calls_ok", "calls_ko", "talk_time")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        # The current call of each busy agent, in the same query (for "activity").
        active = Call.objects.filter(agent=OuterRef("pk"), status=Call.Status.ASSIGNED)
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_call_id=Subquery(active.values("id")[:1]),
                active_call_type=Subquery(active.values("call_type__name")[:1]),
                active_call_since=Subquery(active.values("assigned_at")[:1]),
            )
        )

    @admin.display(description="now")
    def activity(self, obj: Agent) -> str:
        """What the agent is doing: its call and talk time when busy, else how long in its status."""
        now = timezone.now()
        since = getattr(obj, "active_call_since", None)
        if obj.status == Agent.Status.BUSY and since is not None:
            talk = minutes_seconds((now - since).total_seconds())
            return f"on a call ({getattr(obj, 'active_call_type', '')}) for {talk}"
        if obj.status == Agent.Status.AVAILABLE and obj.idle_since is not None:
            return f"idle for {minutes_seconds((now - obj.idle_since).total_seconds())}"
        if obj.status == Agent.Status.WRAP_UP and obj.wrap_up_ends_at is not None:
            return f"wrap-up, {minutes_seconds(max(0.0, (obj.wrap_up_ends_at - now).total_seconds()))} left"
        # A UUID primary key is set before the first save: the add form's agent has no status time yet.
        if obj._state.adding or obj.status_changed_at is None:
            return NOTHING
        status = obj.get_status_display().lower().replace("_", " ")
        return f"{status} for {minutes_seconds((now - obj.status_changed_at).total_seconds())}"

    @admin.display(description="conversion")
    def conversion(self, obj: Agent) -> str:
        decided = obj.calls_ok + obj.calls_ko
        return f"{obj.calls_ok / decided:.0%} of {decided}" if decided else NOTHING

    @admin.display(description="talk time", ordering="talk_time_seconds")
    def talk_time(self, obj: Agent) -> str:
        return minutes_seconds(obj.talk_time_seconds)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # DELETE /agents/{id} checks the agent is not on a call

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        actor = _actor(request)
        # Goes through the services, so Redis learns about the agent too.
        if change:
            agent_update(agent=obj, name=obj.name, agent_type=obj.agent_type, actor=actor)
        else:
            created = agent_create(name=obj.name, agent_type=obj.agent_type, actor=actor)
            obj.pk = created.pk
