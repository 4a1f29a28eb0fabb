"""The audit log through the API: read-only, newest first. Who (``key:<prefix>``,
``user:<name>`` for the admin, ``cli`` or another system actor for commands), what, on which
object, the state before and after, when."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.selectors import audit_get, audit_list
from callcenter.api import not_found, query_params
from callcenter.pagination import PageParams, Pagination, paginated


class AuditEntryOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    actor = serializers.CharField(help_text="key:<prefix>, user:<name> (admin) or a system actor (commands)")
    action = serializers.CharField(help_text="e.g. agent.create, config.update, apikey.revoke")
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()


class AuditListApi(APIView):
    class FilterSerializer(PageParams):
        actor = serializers.CharField(
            required=False, max_length=150, help_text="prefix: key:<prefix>, user:<name>, cli"
        )
        action = serializers.CharField(required=False, max_length=64, help_text="prefix: agent., config., apikey.")
        object_type = serializers.CharField(required=False, max_length=64)
        object_id = serializers.CharField(required=False, max_length=64)

    @extend_schema(
        operation_id="audit_list",
        summary="The audit log, newest first (read-only)",
        parameters=[FilterSerializer],
        responses={200: paginated(AuditEntryOutputSerializer, name="AuditEntryPage")},
    )
    def get(self, request: Request) -> Response:
        filters = query_params(AuditListApi.FilterSerializer, request)
        entries = audit_list(
            actor=filters.get("actor"),
            action=filters.get("action"),
            object_type=filters.get("object_type"),
            object_id=filters.get("object_id"),
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(AuditEntryOutputSerializer(page, many=True).data)


class AuditDetailApi(APIView):
    @extend_schema(
        operation_id="audit_retrieve", summary="One audit entry", responses={200: AuditEntryOutputSerializer}
    )
    def get(self, request: Request, entry_id: Any) -> Response:
        entry = audit_get(entry_id=int(entry_id))
        if entry is None:
            raise not_found("audit entry", "audit_entry_not_found")
        return Response(AuditEntryOutputSerializer(entry).data)
