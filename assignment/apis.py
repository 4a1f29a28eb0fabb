"""The engine's tenant-wide views: /system/status and /system/metrics."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assignment.selectors import system_metrics, system_status


class SystemStatusApi(APIView):
    @extend_schema(
        operation_id="system_status",
        summary="This tenant now: agents by status, queue depth, oldest wait, active calls, services",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(system_status())


class SystemMetricsApi(APIView):
    @extend_schema(
        operation_id="system_metrics",
        summary="This tenant's KPIs (definitions in docs/metrics.md)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(system_metrics())
