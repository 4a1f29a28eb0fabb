"""``GET /metrics``: Prometheus exposition for all tenants (label ``tenant``).

- django-prometheus's request and database series; with several web processes, set
  ``PROMETHEUS_MULTIPROC_DIR`` (the Procfile and docker-compose do) and they are aggregated over
  processes.
- Our own series, read at scrape time from Postgres and Redis (so they are right whatever process
  answers): ``callcenter_assignment_seconds`` (histogram), ``callcenter_calls_total{state}`` (final
  states, only goes up), ``callcenter_calls_received_total``, ``callcenter_calls_current{state}``
  (QUEUED, ASSIGNED), ``callcenter_queue_depth``, ``callcenter_agents{status}``, ``callcenter_max_assignment_seconds``
  (each tenant's alert threshold) and Redis memory.

Protection: when ``METRICS_TOKEN`` is set, a scrape must send ``Authorization: Bearer <token>``.
With ``DEBUG=false`` the token is required: the settings refuse to start without it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.errors import unauthorized


class TenantCollector(Collector):
    """Per-tenant series (the engine's, ``assignment.prometheus``) and the services, at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from assignment.prometheus import redis_memory, tenant_series

        yield from tenant_series()
        yield from redis_memory()
        yield from _services_up()


def _services_up() -> Iterator[Metric]:
    from django.db import connection

    from callcenter.health import check_database, check_redis, heartbeat_checks, timed

    up = GaugeMetricFamily("callcenter_service_up", "1 when the web process reaches the service.", labels=["service"])
    for name, check in (("database", check_database), ("redis", check_redis)):
        up.add_metric([name], 1.0 if timed(check)["status"] == "up" else 0.0)
    yield up
    workers = GaugeMetricFamily("callcenter_workers", "Celery workers whose heartbeat is recent.")
    workers.add_metric([], float(heartbeat_checks()["workers"].get("count", 0)))
    yield workers
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            (count,) = cursor.fetchone()
    except Exception:  # database down: the series is absent, callcenter_service_up says why
        return
    connections = GaugeMetricFamily("callcenter_database_connections", "Connections open to the database.")
    connections.add_metric([], float(count))
    yield connections


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_DefaultCollectors())
    registry.register(TenantCollector())
    return registry


class _DefaultCollectors(Collector):
    """The process-wide registry (django-prometheus's series, process and platform metrics)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
            return unauthorized(
                code="metrics_token_required",
                detail="Send Authorization: Bearer <METRICS_TOKEN>.",
                request=request,
                realm="metrics",
            )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
