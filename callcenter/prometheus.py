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
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django_tenants.utils import schema_context
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.errors import unauthorized


class TenantCollector(Collector):
    """Per-tenant series, computed when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        from agents.models import Agent
        from assignment import engine, metrics
        from calls.models import Call
        from tenants.selectors import tenant_list

        latency = HistogramMetricFamily(
            "callcenter_assignment_seconds",
            "Time from a request reaching the service to its assignment being written.",
            labels=["tenant"],
        )
        # A call's final state never changes, so counts by final state only go up (a `cleanup` of
        # simulation data removes rows: Prometheus sees a counter reset, which rate() handles).
        calls = CounterMetricFamily(
            "callcenter_calls", "Calls that reached a final state, by that state.", labels=["tenant", "state"]
        )
        received = CounterMetricFamily("callcenter_calls_received", "Calls received (every state).", labels=["tenant"])
        current = GaugeMetricFamily(
            "callcenter_calls_current", "Calls not finished yet, by their current state.", labels=["tenant", "state"]
        )
        queue = GaugeMetricFamily("callcenter_queue_depth", "Calls waiting for an agent.", labels=["tenant"])
        agents = GaugeMetricFamily("callcenter_agents", "Agents by status.", labels=["tenant", "status"])
        threshold = GaugeMetricFamily(
            "callcenter_max_assignment_seconds", "The tenant's assignment time alert threshold.", labels=["tenant"]
        )
        for schema_name in tenant_list().values_list("schema_name", flat=True):
            with schema_context(schema_name):
                from assignment.models import ROUTING_SETTINGS_ID, RoutingSettings

                try:
                    buckets, total = metrics.latency_histogram(schema_name=schema_name)
                    latency.add_metric([schema_name], buckets, total)
                    depth, _ = engine.queue_depth(schema_name=schema_name)
                    queue.add_metric([schema_name], depth)
                except Exception:  # Redis down: these series are absent, the others still report
                    pass
                by_state = dict(Call.objects.values_list("status").annotate(n=Count("id")).order_by("status"))
                for state in Call.Status.values:
                    family = calls if state in Call.TERMINAL else current
                    family.add_metric([schema_name, state], by_state.get(state, 0))
                received.add_metric([schema_name], sum(by_state.values()))
                by_status = dict(Agent.objects.values_list("status").annotate(n=Count("id")).order_by("status"))
                for status in Agent.Status.values:
                    agents.add_metric([schema_name, status], by_status.get(status, 0))
                routing = (
                    RoutingSettings.objects.filter(id=ROUTING_SETTINGS_ID)
                    .values_list("max_assignment_time_ms", flat=True)
                    .first()
                )
                threshold.add_metric([schema_name], (routing or 100.0) / 1000)
        yield from (latency, calls, received, current, queue, agents, threshold)
        yield from _redis_memory()
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


def _redis_memory() -> Iterator[Metric]:
    """Redis memory (for the 85 % alert) without a separate exporter."""
    from assignment import engine

    try:
        info = engine.client().info("memory")
    except Exception:  # Redis down: no series; the health check reports it
        return
    used = GaugeMetricFamily("callcenter_redis_memory_used_bytes", "Memory used by Redis.")
    used.add_metric([], float(info.get("used_memory", 0)))
    limit = GaugeMetricFamily(
        "callcenter_redis_memory_max_bytes", "Redis maxmemory (0 when unlimited: then the alert uses system memory)."
    )
    limit.add_metric([], float(info.get("maxmemory", 0) or info.get("total_system_memory", 0)))
    yield used
    yield limit


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
