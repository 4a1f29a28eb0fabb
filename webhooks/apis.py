from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from callcenter.actors import actor_from_request
from callcenter.api import StrictSerializer, not_found, query_params, validated
from callcenter.pagination import PageParams, Pagination, paginated
from callcenter.tenancy import current_schema
from webhooks.models import WebhookEndpoint, WebhookMessage
from webhooks.selectors import webhook_endpoint_get, webhook_endpoint_list, webhook_message_get, webhook_message_list
from webhooks.services import (
    WEBHOOK_EVENT_TYPES,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_message_redeliver,
    webhook_test_send,
)


class WebhookOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    url = serializers.URLField()
    event_types = serializers.ListField(
        child=serializers.CharField(), help_text="The event types sent to it; empty: every type."
    )
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    include_simulated = serializers.BooleanField(
        help_text="Whether events of simulated calls and agents (simulations, demo traffic) are sent too."
    )
    disabled_reason = serializers.CharField(help_text="Why the system disabled it (failing for days), else empty.")
    failing_since = serializers.DateTimeField(allow_null=True, help_text="Start of the current run of failed attempts.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookWithSecretOutputSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (whsec_ + base64). Shown only now: keep it to verify webhook-signature."
    )


class WebhookAttemptOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    attempted_at = serializers.DateTimeField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status; null if none.")
    latency_ms = serializers.FloatField()
    response_excerpt = serializers.CharField(help_text="The start of the receiver's response body.")
    error = serializers.CharField(help_text="What failed before an answer (timeout, refused address...), else empty.")


class WebhookMessageOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    event_id = serializers.UUIDField(help_text="The webhook-id header: deduplicate by it.")
    event_type = serializers.CharField()
    sequence = serializers.IntegerField(allow_null=True, help_text="The object's event number: order by it.")
    status = serializers.ChoiceField(choices=WebhookMessage.Status.choices)
    attempts = serializers.IntegerField(help_text="Attempts in the current retry schedule.")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    attempt_log = WebhookAttemptOutputSerializer(many=True, help_text="Every attempt, oldest first.")


def _event_types_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES),
        max_length=len(WEBHOOK_EVENT_TYPES),
        required=False,
        help_text="Event types to send; empty or omitted: every type.",
    )


def _endpoint_or_404(endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(endpoint_id=endpoint_id)
    if endpoint is None:
        raise not_found("webhook endpoint", "webhook_not_found")
    return endpoint


class WebhookListApi(APIView):
    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook endpoints",
        parameters=[PageParams],
        responses={200: paginated(WebhookOutputSerializer, name="WebhookPage")},
    )
    def get(self, request: Request) -> Response:
        query_params(PageParams, request)
        paginator = Pagination()
        page = paginator.paginate_queryset(webhook_endpoint_list(), request, view=self)
        return paginator.get_paginated_response(WebhookOutputSerializer(page, many=True).data)


class WebhookCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        url = serializers.URLField(max_length=2000)
        event_types = _event_types_field()
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False, default=True)
        include_simulated = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Also send events of simulated calls and agents (simulations, demo traffic). Default false.",
        )

    @extend_schema(
        operation_id="webhooks_create",
        summary="Subscribe a URL to events (the answer shows its signing secret, once)",
        description=(
            "The URL must be http or https and resolve to public addresses only (400 webhook_url_refused "
            "otherwise). Every event is POSTed signed per Standard Webhooks; see docs/webhooks.md."
        ),
        request=InputSerializer,
        responses={201: WebhookWithSecretOutputSerializer},
        examples=[
            OpenApiExample(
                "calls only",
                value={"url": "https://crm.example.com/hooks/callcenter", "event_types": ["call.assigned"]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(WebhookCreateApi.InputSerializer, request)
        endpoint = webhook_endpoint_create(
            url=data["url"],
            event_types=data.get("event_types", []),
            description=data.get("description", ""),
            enabled=data["enabled"],
            include_simulated=data["include_simulated"],
            actor=actor_from_request(request),
        )
        return Response(
            WebhookWithSecretOutputSerializer(endpoint).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/webhooks/{endpoint.id}"},
        )


class WebhookDetailApi(APIView):
    @extend_schema(
        operation_id="webhooks_retrieve", summary="A webhook endpoint", responses={200: WebhookOutputSerializer}
    )
    def get(self, request: Request, endpoint_id: Any) -> Response:
        return Response(WebhookOutputSerializer(_endpoint_or_404(endpoint_id)).data)


class WebhookUpdateApi(APIView):
    class InputSerializer(StrictSerializer):
        url = serializers.URLField(max_length=2000, required=False)
        event_types = _event_types_field()
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False, help_text="true re-enables a disabled endpoint.")
        include_simulated = serializers.BooleanField(
            required=False, help_text="Also send events of simulated calls and agents."
        )

    @extend_schema(
        operation_id="webhooks_update",
        summary="Change a webhook endpoint (URL, event types, description, enabled)",
        request=InputSerializer,
        responses={200: WebhookOutputSerializer},
    )
    def patch(self, request: Request, endpoint_id: Any) -> Response:
        endpoint = _endpoint_or_404(endpoint_id)
        data = validated(WebhookUpdateApi.InputSerializer, request)
        endpoint = webhook_endpoint_update(
            endpoint=endpoint,
            url=data.get("url"),
            event_types=data.get("event_types"),
            description=data.get("description"),
            enabled=data.get("enabled"),
            include_simulated=data.get("include_simulated"),
            actor=actor_from_request(request),
        )
        return Response(WebhookOutputSerializer(endpoint).data)


class WebhookDeleteApi(APIView):
    @extend_schema(
        operation_id="webhooks_destroy", summary="Remove a webhook endpoint and its log", responses={204: None}
    )
    def delete(self, request: Request, endpoint_id: Any) -> Response:
        webhook_endpoint_delete(endpoint=_endpoint_or_404(endpoint_id), actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(APIView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Give the endpoint a new secret (shown once); the old one keeps signing for a grace period",
        request=None,
        responses={200: WebhookWithSecretOutputSerializer},
    )
    def post(self, request: Request, endpoint_id: Any) -> Response:
        endpoint = webhook_endpoint_rotate_secret(
            endpoint=_endpoint_or_404(endpoint_id), actor=actor_from_request(request)
        )
        return Response(WebhookWithSecretOutputSerializer(endpoint).data)


class WebhookTestApi(APIView):
    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a signed webhook.test message to the endpoint (delivered in the background)",
        request=None,
        responses={202: WebhookMessageOutputSerializer},
    )
    def post(self, request: Request, endpoint_id: Any) -> Response:
        message = webhook_test_send(endpoint=_endpoint_or_404(endpoint_id), schema_name=current_schema())
        return Response(
            WebhookMessageOutputSerializer(message).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/webhooks/{endpoint_id}/messages/{message.id}"},
        )


class WebhookMessageListApi(APIView):
    @extend_schema(
        operation_id="webhooks_messages",
        summary="An endpoint's messages, newest first, each with its attempts",
        parameters=[PageParams],
        responses={200: paginated(WebhookMessageOutputSerializer, name="WebhookMessagePage")},
    )
    def get(self, request: Request, endpoint_id: Any) -> Response:
        endpoint = _endpoint_or_404(endpoint_id)
        query_params(PageParams, request)
        paginator = Pagination()
        page = paginator.paginate_queryset(webhook_message_list(endpoint=endpoint), request, view=self)
        return paginator.get_paginated_response(WebhookMessageOutputSerializer(page, many=True).data)


@extend_schema_view(get=extend_schema(exclude=True))
class WebhookDeliveryListApi(WebhookMessageListApi):
    """``GET /webhooks/{id}/deliveries``, the name SPEC §4 gives the delivery log: the same list as
    ``/messages`` (kept out of the document, which names it once)."""


class WebhookMessageDetailApi(APIView):
    @extend_schema(
        operation_id="webhooks_message",
        summary="One message and its attempts",
        responses={200: WebhookMessageOutputSerializer},
    )
    def get(self, request: Request, endpoint_id: Any, message_id: Any) -> Response:
        message = webhook_message_get(endpoint=_endpoint_or_404(endpoint_id), message_id=message_id)
        if message is None:
            raise not_found("webhook message", "webhook_message_not_found")
        return Response(WebhookMessageOutputSerializer(message).data)


class WebhookMessageRedeliverApi(APIView):
    @extend_schema(
        operation_id="webhooks_message_redeliver",
        summary="Deliver a message again now (same webhook-id), with a fresh retry schedule",
        request=None,
        responses={202: WebhookMessageOutputSerializer},
    )
    def post(self, request: Request, endpoint_id: Any, message_id: Any) -> Response:
        message = webhook_message_get(endpoint=_endpoint_or_404(endpoint_id), message_id=message_id)
        if message is None:
            raise not_found("webhook message", "webhook_message_not_found")
        message = webhook_message_redeliver(
            message=message, schema_name=current_schema(), actor=actor_from_request(request)
        )
        return Response(WebhookMessageOutputSerializer(message).data, status=status.HTTP_202_ACCEPTED)
