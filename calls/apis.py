from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from callcenter.actors import actor_from_request
from callcenter.api import StrictSerializer, not_found, query_params, validated
from callcenter.db.planning import planned_each_time
from callcenter.errors import ApplicationError
from callcenter.pagination import CallCursorPagination, CursorParams, paginated
from calls.events import call_payload
from calls.models import Call
from calls.selectors import call_get, call_list
from calls.services import E164, call_cancel, call_complete, call_create, request_fingerprint
from routing.services import routing_config

RETRY_AFTER_SECONDS = 5
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class CallOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    phone_number = serializers.SerializerMethodField()
    call_type = serializers.CharField(source="call_type.slug", help_text="The call type's slug.")
    priority = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Call.Status.choices)
    end_reason = serializers.CharField()
    agent_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    assignment_time_ms = serializers.FloatField(allow_null=True)
    planned_duration_seconds = serializers.FloatField(allow_null=True)
    expected_end_at = serializers.DateTimeField(allow_null=True)
    actual_duration_seconds = serializers.FloatField(allow_null=True)
    outcome = serializers.ChoiceField(choices=Call.Outcome.choices, allow_null=True)
    simulated = serializers.BooleanField(help_text="part of a simulation: only ever handled by simulated agents")

    def get_phone_number(self, call: Call) -> str:
        """Shown in full only in the detail view (and to its creator); masked everywhere else."""
        return call.phone_number if self.context.get("full_phone") else call.phone_number_masked


def call_representation(call: Call, *, full_phone: bool = False) -> dict[str, Any]:
    """What ``CallOutputSerializer`` gives, built directly (the serializer's fields cost more than
    the rest of the answer on the hot path; a test keeps the two identical): the events' payload,
    with the full phone number when ``full_phone``."""
    body = call_payload(call)
    if full_phone:
        body["phone_number"] = call.phone_number
    return body


def _call_or_404(call_id: uuid.UUID) -> Call:
    call = call_get(call_id=call_id)
    if call is None:
        raise not_found("call", "call_not_found")
    return call


_CREATE_STATUS: dict[str, int] = {
    Call.Status.ASSIGNED: status.HTTP_201_CREATED,
    Call.Status.QUEUED: status.HTTP_202_ACCEPTED,
    Call.Status.SATURATED: status.HTTP_503_SERVICE_UNAVAILABLE,
}


@extend_schema_field({"type": "string", "pattern": f"^{E164.pattern}$", "example": "+34600123456"})
class PhoneNumberField(serializers.CharField):
    """E.164, checked by ``call_create`` (as ``invalid_phone_number``); the document states the rule."""


class CallCreateApi(APIView):
    problem_statuses = {"POST": {422}}

    class InputSerializer(StrictSerializer):
        phone_number = PhoneNumberField(max_length=32)
        call_type = serializers.CharField(max_length=50)
        priority = serializers.IntegerField(min_value=0, max_value=9, required=False, default=0)
        external_id = serializers.CharField(max_length=128, required=False, allow_null=True)

    @extend_schema(
        operation_id="calls_create",
        summary="Create a call and assign it",
        description=(
            "201 with status ASSIGNED when an agent took it, 202 with QUEUED when it waits, 503 with "
            "SATURATED (and Retry-After) when the queue is full. The body is the call in every case. "
            "Send an `Idempotency-Key` header (or an `external_id`) to make retries safe."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    "1-255 characters of your choosing, e.g. your own call id. A retry with the same key "
                    "returns the first call with its original status and `Idempotent-Replayed: true`; the "
                    "same key with another body is a 422 `idempotency_key_reused`."
                ),
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                str,
                OpenApiParameter.HEADER,
                response=[201, 202, 503],
                description="`true` when this answer replays an earlier request with the same key.",
            ),
        ],
        request=InputSerializer,
        responses={
            201: CallOutputSerializer,
            202: CallOutputSerializer,
            503: OpenApiResponse(CallOutputSerializer, description="SATURATED"),
        },
        examples=[
            OpenApiExample(
                "new call", value={"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}, request_only=True
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(CallCreateApi.InputSerializer, request)
        call_type = routing_config().call_types_by_slug.get(data["call_type"])
        if call_type is None:
            raise ApplicationError(
                code="unknown_call_type",
                message=f"Unknown call type {data['call_type']!r}.",
                errors=[{"field": "call_type", "message": "unknown call type", "code": "unknown_call_type"}],
            )
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
            raise ApplicationError(code="validation_error", message="Idempotency-Key must be 1-255 characters.")
        created = call_create(
            phone_number=data["phone_number"],
            call_type=call_type,
            priority=data["priority"],
            external_id=data.get("external_id"),
            idempotency_key=idempotency_key,
            fingerprint=request_fingerprint(dict(data)),
            received_at=getattr(request._request, "received_at", None),
            actor=actor_from_request(request),
        )
        call = created.call
        headers = {"Location": f"/calls/{call.id}"}
        if created.created_as == Call.Status.SATURATED:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if created.replayed:
            headers["Idempotent-Replayed"] = "true"
        code = _CREATE_STATUS[created.created_as]
        body = call_representation(call, full_phone=True)
        return Response(body, status=code, headers=headers)


class CallListApi(APIView):
    class FilterSerializer(CursorParams):
        status = serializers.ChoiceField(choices=Call.Status.choices, required=False)
        call_type = serializers.CharField(required=False, max_length=50, help_text="A call type's slug.")
        agent_id = serializers.UUIDField(required=False)
        created_after = serializers.DateTimeField(required=False)
        created_before = serializers.DateTimeField(required=False)

    @extend_schema(
        operation_id="calls_list",
        summary="List calls, newest first (phone numbers masked)",
        parameters=[FilterSerializer],
        responses={200: paginated(CallOutputSerializer, name="CallPage", counted=False)},
    )
    def get(self, request: Request) -> Response:
        filters = query_params(CallListApi.FilterSerializer, request)
        calls = call_list(
            status=filters.get("status"),
            call_type=filters.get("call_type"),
            agent_id=filters.get("agent_id"),
            created_after=filters.get("created_after"),
            created_before=filters.get("created_before"),
        )
        paginator = CallCursorPagination()
        with planned_each_time():  # a rare agent or call type must not get an average value's plan
            page = paginator.paginate_queryset(calls, request, view=self)
        return paginator.get_paginated_response(CallOutputSerializer(page, many=True).data)


class CallDetailApi(APIView):
    @extend_schema(
        operation_id="calls_retrieve", summary="A call (full phone number)", responses={200: CallOutputSerializer}
    )
    def get(self, request: Request, call_id: Any) -> Response:
        return Response(CallOutputSerializer(_call_or_404(call_id), context={"full_phone": True}).data)


class CallCancelApi(APIView):
    @extend_schema(
        operation_id="calls_cancel",
        summary="Cancel a waiting call, or hang up an active one",
        responses={200: CallOutputSerializer},
    )
    def delete(self, request: Request, call_id: Any) -> Response:
        call = call_cancel(call=_call_or_404(call_id), actor=actor_from_request(request))
        return Response(CallOutputSerializer(call).data)


class CallCompleteApi(APIView):
    class InputSerializer(StrictSerializer):
        outcome = serializers.ChoiceField(choices=Call.Outcome.choices, required=False, allow_null=True)

    @extend_schema(
        operation_id="calls_complete",
        summary="End an active call (outcome drawn from the conversion matrix when omitted)",
        request=InputSerializer,
        responses={200: CallOutputSerializer},
        examples=[OpenApiExample("converted", value={"outcome": "OK"}, request_only=True)],
    )
    def post(self, request: Request, call_id: uuid.UUID) -> Response:
        data = validated(CallCompleteApi.InputSerializer, request)
        completed, _ = call_complete(call_id=call_id, outcome=data.get("outcome"), actor=actor_from_request(request))
        return Response(call_representation(completed))
