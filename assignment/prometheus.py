"""The engine's per-tenant Prometheus series, read at scrape time from Postgres and Redis (so they
are right whatever process answers): ``callcenter_assignment_seconds`` (histogram),
``callcenter_calls_total{state}`` (final states, only goes up), ``callcenter_calls_received_total``,
``callcenter_calls_current{state}`` (QUEUED, ASSIGNED), ``callcenter_queue_depth``,
``callcenter_agents{status}``, ``callcenter_max_assignment_seconds`` (each tenant's alert threshold),
and Redis memory. ``callcenter.prometheus`` serves them at ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from django_tenants.utils import schema_context
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric


def tenant_series() -> Iterator[Metric]:
    """Every tenant's series (label ``tenant``)."""
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


def redis_memory() -> Iterator[Metric]:
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
