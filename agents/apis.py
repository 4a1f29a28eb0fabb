from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from agents.selectors import agent_get, agent_list, agent_list_available
from agents.services import agent_create, agent_delete, agent_set_status, agent_update
from callcenter.actors import actor_from_request
from callcenter.api import StrictSerializer, not_found, query_params, validated
from callcenter.pagination import PageParams, Pagination, paginated
from routing.selectors import agent_type_get


class AgentOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    name = serializers.CharField()
    agent_type = serializers.CharField(source="agent_type.slug", help_text="The agent type's slug.")
    status = serializers.ChoiceField(choices=Agent.Status.choices)
    idle_since = serializers.DateTimeField(allow_null=True)
    wrap_up_ends_at = serializers.DateTimeField(allow_null=True)
    status_changed_at = serializers.DateTimeField()
    calls_handled = serializers.IntegerField()
    calls_ok = serializers.IntegerField()
    calls_ko = serializers.IntegerField()
    talk_time_seconds = serializers.FloatField()
    simulated = serializers.BooleanField(help_text="created by a simulation: takes simulated calls only")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _agent_type_or_400(slug: str) -> Any:
    agent_type = agent_type_get(slug=slug)
    if agent_type is None:
        raise serializers.ValidationError({"agent_type": [f"Unknown agent type {slug!r}."]}, code="unknown_agent_type")
    return agent_type


def _agent_or_404(agent_id: uuid.UUID) -> Agent:
    agent = agent_get(agent_id=agent_id)
    if agent is None:
        raise not_found("agent", "agent_not_found")
    return agent


class AgentListApi(APIView):
    class FilterSerializer(PageParams):
        status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)
        agent_type = serializers.CharField(required=False, max_length=50, help_text="An agent type's slug.")

    @extend_schema(
        operation_id="agents_list",
        summary="List agents",
        parameters=[FilterSerializer],
        responses={200: paginated(AgentOutputSerializer, name="AgentPage")},
    )
    def get(self, request: Request) -> Response:
        filters = query_params(AgentListApi.FilterSerializer, request)
        agents = agent_list(status=filters.get("status"), agent_type=filters.get("agent_type"))
        paginator = Pagination()
        page = paginator.paginate_queryset(agents, request, view=self)
        return paginator.get_paginated_response(AgentOutputSerializer(page, many=True).data)


class AgentCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100)
        agent_type = serializers.CharField(max_length=50)
        status = serializers.ChoiceField(choices=sorted(str(s) for s in Agent.CLIENT_SETTABLE), required=False)

    @extend_schema(
        operation_id="agents_create",
        summary="Create an agent",
        request=InputSerializer,
        responses={201: AgentOutputSerializer},
        examples=[OpenApiExample("new agent", value={"name": "Ana", "agent_type": "agente_tipo_1"}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = validated(AgentCreateApi.InputSerializer, request)
        agent = agent_create(
            name=data["name"],
            agent_type=_agent_type_or_400(data["agent_type"]),
            status=data.get("status", Agent.Status.OFFLINE),
            actor=actor_from_request(request),
        )
        return Response(
            AgentOutputSerializer(agent).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/agents/{agent.id}"},
        )


class AgentAvailableListApi(APIView):
    @extend_schema(
        operation_id="agents_available",
        summary="Available agents, longest idle first",
        parameters=[PageParams],
        responses={200: paginated(AgentOutputSerializer, name="AvailableAgentPage")},
    )
    def get(self, request: Request) -> Response:
        query_params(PageParams, request)
        paginator = Pagination()
        page = paginator.paginate_queryset(agent_list_available(), request, view=self)
        return paginator.get_paginated_response(AgentOutputSerializer(page, many=True).data)


class AgentDetailApi(APIView):
    @extend_schema(operation_id="agents_retrieve", summary="An agent", responses={200: AgentOutputSerializer})
    def get(self, request: Request, agent_id: Any) -> Response:
        return Response(AgentOutputSerializer(_agent_or_404(agent_id)).data)


class AgentUpdateApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False)
        agent_type = serializers.CharField(max_length=50, required=False)

    @extend_schema(
        operation_id="agents_update",
        summary="Rename or retype an agent",
        request=InputSerializer,
        responses={200: AgentOutputSerializer},
    )
    def patch(self, request: Request, agent_id: Any) -> Response:
        agent = _agent_or_404(agent_id)
        data = validated(AgentUpdateApi.InputSerializer, request)
        agent = agent_update(
            agent=agent,
            name=data.get("name"),
            agent_type=_agent_type_or_400(data["agent_type"]) if "agent_type" in data else None,
            actor=actor_from_request(request),
        )
        return Response(AgentOutputSerializer(agent_get(agent_id=agent.id)).data)


class AgentDeleteApi(APIView):
    @extend_schema(operation_id="agents_destroy", summary="Remove an agent (409 while busy)", responses={204: None})
    def delete(self, request: Request, agent_id: Any) -> Response:
        agent_delete(agent=_agent_or_404(agent_id), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# The statuses a client may set (named AgentClientStatusEnum in the document: ENUM_NAME_OVERRIDES).
CLIENT_STATUSES = sorted(str(status) for status in Agent.CLIENT_SETTABLE)


@extend_schema_field({"type": "string", "enum": CLIENT_STATUSES})
class ClientStatusField(serializers.ChoiceField):
    """Takes every status, so that BUSY or WRAP_UP get the service's ``invalid_status_transition``
    (which says who sets them) rather than a bare ``invalid_choice``; documents the ones a client
    may set, the only ones that can succeed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Agent.Status.choices, **kwargs)


class AgentSetStatusApi(APIView):
    class InputSerializer(StrictSerializer):
        status = ClientStatusField()
        force = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="agents_set_status",
        summary="Change an agent's status (OFFLINE, AVAILABLE, BREAK)",
        request=InputSerializer,
        responses={200: AgentOutputSerializer},
        examples=[OpenApiExample("log in", value={"status": "AVAILABLE"}, request_only=True)],
    )
    def put(self, request: Request, agent_id: Any) -> Response:
        agent = _agent_or_404(agent_id)
        data = validated(AgentSetStatusApi.InputSerializer, request)
        agent = agent_set_status(
            agent=agent, status=data["status"], force=data["force"], actor=actor_from_request(request)
        )
        return Response(AgentOutputSerializer(agent).data)
