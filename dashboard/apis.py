"""The dashboard's JSON endpoints, for the page's own script: a session (the tenant's Django login)
authenticates them, CSRF protects the controls. Excluded from the public OpenAPI document."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from callcenter.actors import actor_from_request
from callcenter.api import NumberField, StrictSerializer, query_params, validated
from callcenter.tenancy import current_schema
from dashboard.selectors import Traffic, dashboard_state
from dashboard.services import dashboard_agent_set_status, dashboard_simulation_start, dashboard_simulation_stop
from simulation.control import LIMITS, LiveParameters

VIEW_PERMISSION = "dashboard.view_dashboard"
OPERATE_PERMISSION = "dashboard.operate_dashboard"


class CanViewDashboard(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if current_schema() == "public" or user is None or not user.is_authenticated:
            from rest_framework.exceptions import NotAuthenticated

            raise NotAuthenticated()
        return bool(user.has_perm(VIEW_PERMISSION))


class CanOperateDashboard(CanViewDashboard):
    message = "Your role may watch the dashboard but not change anything."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and bool(request.user.has_perm(OPERATE_PERMISSION))


class DashboardApi(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [CanViewDashboard]


class DashboardStateApi(DashboardApi):
    class FilterSerializer(StrictSerializer):
        traffic = serializers.ChoiceField(choices=Traffic.choices, required=False, default=Traffic.ALL)

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        filters = query_params(DashboardStateApi.FilterSerializer, request)
        state = dashboard_state(can_operate=request.user.has_perm(OPERATE_PERMISSION), traffic=filters["traffic"])
        response = Response(state)
        response["Cache-Control"] = "no-store"
        return response


class DashboardAgentStatusApi(DashboardApi):
    permission_classes = [CanOperateDashboard]

    class InputSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=sorted(Agent.CLIENT_SETTABLE))
        force = serializers.BooleanField(required=False, default=False)

    @extend_schema(exclude=True)
    def post(self, request: Request, agent_id: Any) -> Response:
        data = validated(DashboardAgentStatusApi.InputSerializer, request)
        agent = dashboard_agent_set_status(
            agent_id=agent_id, status=data["status"], force=data["force"], actor=actor_from_request(request)
        )
        return Response({"id": str(agent.id), "status": agent.status})


def _limits(name: str) -> dict[str, Any]:
    low, high = LIMITS[name]
    return {"min_value": low, "max_value": high}


class DashboardSimulationStartApi(DashboardApi):
    permission_classes = [CanOperateDashboard]

    class InputSerializer(StrictSerializer):
        agents = serializers.IntegerField(**_limits("agents"))
        calls_per_hour = NumberField(**_limits("calls_per_hour"))
        time_scale = NumberField(**_limits("time_scale"))
        calls = serializers.IntegerField(required=False, allow_null=True, **_limits("calls"))
        seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**63 - 1)

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        data = validated(DashboardSimulationStartApi.InputSerializer, request)
        run = dashboard_simulation_start(parameters=LiveParameters(**data), actor=actor_from_request(request))
        return Response({"id": str(run.id), "status": run.status, "seed": run.seed}, status=201)


class DashboardSimulationStopApi(DashboardApi):
    permission_classes = [CanOperateDashboard]

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        run = dashboard_simulation_stop(actor=actor_from_request(request))
        return Response({"id": str(run.id), "status": run.status})
