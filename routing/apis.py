"""Tenant configuration APIs: routing settings, conversion matrix, agent types and call types."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import AgentType
from assignment.models import DurationModel, Strategy
from callcenter.actors import actor_from_request
from callcenter.api import NumberField, StrictSerializer, not_found, query_params, validated
from callcenter.pagination import PageParams, Pagination, paginated
from calls.models import CallType
from routing.selectors import (
    agent_type_get,
    agent_type_list,
    call_type_get,
    call_type_list,
    config_get,
    conversion_matrix_get,
)

# The request examples name a new tenant's default types, so that they work as shown (and
# schemathesis, which sends them first, reaches the success path).
from routing.services import (
    DEFAULT_CALL_TYPES,
    DEFAULT_MATRIX,
    agent_type_create,
    agent_type_delete,
    call_type_create,
    call_type_delete,
    call_type_mix_update,
    conversion_matrix_update,
    routing_settings_update,
    type_rename,
)


def _rate() -> NumberField:
    return NumberField(min_value=0.0, max_value=1.0)


class ConfigSerializer(StrictSerializer):
    strategy = serializers.ChoiceField(choices=Strategy.choices)
    max_queue_length = serializers.IntegerField(min_value=0, max_value=1_000_000)
    max_wait_seconds = serializers.IntegerField(min_value=1, max_value=86_400)
    wrap_up_seconds = NumberField(min_value=0, max_value=3_600)
    duration_model = serializers.ChoiceField(choices=DurationModel.choices)
    duration_mean_seconds = NumberField(min_value=0.001, max_value=86_400)
    duration_std_seconds = NumberField(min_value=0, max_value=86_400)
    duration_min_seconds = NumberField(min_value=0, max_value=86_400)
    duration_max_seconds = NumberField(min_value=0.001, max_value=86_400)
    time_scale = NumberField(min_value=0.001, max_value=100_000)
    max_assignment_time_ms = NumberField(min_value=0.001, max_value=60_000)
    service_level_seconds = serializers.IntegerField(min_value=1, max_value=3_600)
    service_level_target = NumberField(min_value=0.01, max_value=1.0)
    call_type_mix = serializers.DictField(child=NumberField(min_value=0))
    updated_at = serializers.DateTimeField(read_only=True)


class ConfigApi(APIView):
    @extend_schema(operation_id="config_retrieve", summary="Routing settings", responses={200: ConfigSerializer})
    def get(self, request: Request) -> Response:
        return Response(ConfigSerializer(config_get()).data)

    @extend_schema(
        operation_id="config_update",
        summary="Change routing settings (fields left out keep their value)",
        request=ConfigSerializer(partial=True),
        responses={200: ConfigSerializer},
        examples=[
            OpenApiExample("strategy", value={"strategy": "best_conversion", "wrap_up_seconds": 5}, request_only=True)
        ],
    )
    def put(self, request: Request) -> Response:
        data = validated(ConfigSerializer, request, partial=True)
        actor = actor_from_request(request)
        mix = data.pop("call_type_mix", None)
        with transaction.atomic():
            if data:
                routing_settings_update(changes=data, actor=actor)
            if mix is not None:
                call_type_mix_update(mix=mix, actor=actor)
        return Response(ConfigSerializer(config_get()).data)


class MatrixSerializer(StrictSerializer):
    matrix = serializers.DictField(child=serializers.DictField(child=NumberField()))


class ConversionMatrixApi(APIView):
    @extend_schema(
        operation_id="conversion_matrix_retrieve",
        summary="The conversion matrix: P(OK) by agent type (rows) and call type (columns)",
        responses={200: MatrixSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response({"matrix": conversion_matrix_get()})

    @extend_schema(
        operation_id="conversion_matrix_update",
        summary="Replace the conversion matrix (every cell required, each in [0, 1])",
        request=MatrixSerializer,
        responses={200: MatrixSerializer},
        examples=[OpenApiExample("a new tenant's matrix", value={"matrix": DEFAULT_MATRIX}, request_only=True)],
    )
    def put(self, request: Request) -> Response:
        data = validated(MatrixSerializer, request)
        return Response({"matrix": conversion_matrix_update(matrix=data["matrix"], actor=actor_from_request(request))})


class AgentTypeOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.SlugField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CallTypeOutputSerializer(AgentTypeOutputSerializer):
    mix_weight = serializers.FloatField()


def _agent_type_or_404(slug: str) -> AgentType:
    found = agent_type_get(slug=slug)
    if found is None:
        raise not_found("agent type", "agent_type_not_found")
    return found


def _call_type_or_404(slug: str) -> CallType:
    found = call_type_get(slug=slug)
    if found is None:
        raise not_found("call type", "call_type_not_found")
    return found


class AgentTypeListApi(APIView):
    @extend_schema(
        operation_id="agent_types_list",
        summary="Agent types",
        parameters=[PageParams],
        responses={200: paginated(AgentTypeOutputSerializer, name="AgentTypePage")},
    )
    def get(self, request: Request) -> Response:
        query_params(PageParams, request)
        paginator = Pagination()
        page = paginator.paginate_queryset(agent_type_list(), request, view=self)
        return paginator.get_paginated_response(AgentTypeOutputSerializer(page, many=True).data)


class AgentTypeCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        slug = serializers.SlugField(max_length=50)
        name = serializers.CharField(max_length=100)
        conversion_rates = serializers.DictField(child=_rate(), help_text="P(OK) for every call type.")

    @extend_schema(
        operation_id="agent_types_create",
        summary="Create an agent type with its matrix row",
        request=InputSerializer,
        responses={201: AgentTypeOutputSerializer},
        examples=[
            OpenApiExample(
                "senior agents",
                value={
                    "slug": "senior",
                    "name": "Senior",
                    "conversion_rates": {slug: 0.35 for slug in DEFAULT_CALL_TYPES},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(AgentTypeCreateApi.InputSerializer, request)
        created = agent_type_create(
            slug=data["slug"],
            name=data["name"],
            conversion_rates=data["conversion_rates"],
            actor=actor_from_request(request),
        )
        return Response(
            AgentTypeOutputSerializer(created).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/agent-types/{created.slug}"},
        )


class AgentTypeDetailApi(APIView):
    @extend_schema(
        operation_id="agent_types_retrieve", summary="An agent type", responses={200: AgentTypeOutputSerializer}
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(AgentTypeOutputSerializer(_agent_type_or_404(slug)).data)


class AgentTypeUpdateApi(APIView):
    class InputSerializer(StrictSerializer):
        # Optional like every field of a PATCH (as the document says): an empty body changes nothing.
        name = serializers.CharField(max_length=100, required=False)

    @extend_schema(
        operation_id="agent_types_update",
        summary="Rename an agent type",
        request=InputSerializer,
        responses={200: AgentTypeOutputSerializer},
    )
    def patch(self, request: Request, slug: str) -> Response:
        agent_type = _agent_type_or_404(slug)
        data = validated(AgentTypeUpdateApi.InputSerializer, request)
        updated = type_rename(obj=agent_type, name=data.get("name"), mix_weight=None, actor=actor_from_request(request))
        return Response(AgentTypeOutputSerializer(updated).data)


class AgentTypeDeleteApi(APIView):
    @extend_schema(operation_id="agent_types_destroy", summary="Remove an unused agent type", responses={204: None})
    def delete(self, request: Request, slug: str) -> Response:
        agent_type_delete(agent_type=_agent_type_or_404(slug), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CallTypeListApi(APIView):
    @extend_schema(
        operation_id="call_types_list",
        summary="Call types",
        parameters=[PageParams],
        responses={200: paginated(CallTypeOutputSerializer, name="CallTypePage")},
    )
    def get(self, request: Request) -> Response:
        query_params(PageParams, request)
        paginator = Pagination()
        page = paginator.paginate_queryset(call_type_list(), request, view=self)
        return paginator.get_paginated_response(CallTypeOutputSerializer(page, many=True).data)


class CallTypeCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        slug = serializers.SlugField(max_length=50)
        name = serializers.CharField(max_length=100)
        mix_weight = NumberField(min_value=0, required=False, default=0.0)
        conversion_rates = serializers.DictField(child=_rate(), help_text="P(OK) for every agent type.")

    @extend_schema(
        operation_id="call_types_create",
        summary="Create a call type with its matrix column",
        request=InputSerializer,
        responses={201: CallTypeOutputSerializer},
        examples=[
            OpenApiExample(
                "retention calls",
                value={
                    "slug": "retention",
                    "name": "Retention",
                    "mix_weight": 0.1,
                    "conversion_rates": {slug: 0.15 for slug in DEFAULT_MATRIX},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(CallTypeCreateApi.InputSerializer, request)
        created = call_type_create(
            slug=data["slug"],
            name=data["name"],
            mix_weight=data["mix_weight"],
            conversion_rates=data["conversion_rates"],
            actor=actor_from_request(request),
        )
        return Response(
            CallTypeOutputSerializer(created).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/call-types/{created.slug}"},
        )


class CallTypeDetailApi(APIView):
    @extend_schema(operation_id="call_types_retrieve", summary="A call type", responses={200: CallTypeOutputSerializer})
    def get(self, request: Request, slug: str) -> Response:
        return Response(CallTypeOutputSerializer(_call_type_or_404(slug)).data)


class CallTypeUpdateApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False)
        mix_weight = NumberField(min_value=0, required=False)

    @extend_schema(
        operation_id="call_types_update",
        summary="Rename a call type or change its mix weight",
        request=InputSerializer,
        responses={200: CallTypeOutputSerializer},
    )
    def patch(self, request: Request, slug: str) -> Response:
        call_type = _call_type_or_404(slug)
        data: dict[str, Any] = validated(CallTypeUpdateApi.InputSerializer, request)
        updated = type_rename(
            obj=call_type, name=data.get("name"), mix_weight=data.get("mix_weight"), actor=actor_from_request(request)
        )
        return Response(CallTypeOutputSerializer(updated).data)


class CallTypeDeleteApi(APIView):
    @extend_schema(operation_id="call_types_destroy", summary="Remove a call type without calls", responses={204: None})
    def delete(self, request: Request, slug: str) -> Response:
        call_type_delete(call_type=_call_type_or_404(slug), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
