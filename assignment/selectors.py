from __future__ import annotations

import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from redis.exceptions import RedisError

from agents.models import Agent
from assignment import engine, metrics
from assignment.models import ROUTING_SETTINGS_ID, ConversionRate, RoutingSettings
from callcenter.tenancy import current_schema
from calls.models import Call

SERVICE_LEVEL_WINDOW = datetime.timedelta(hours=1)


def tenant_live_state() -> dict[str, Any]:
    """The current tenant right now: agents by status, queue depth, oldest wait, active calls.
    The queue comes from Redis (where it is decided), or from Postgres when Redis is unreachable."""
    now = timezone.now()
    agents = {status: 0 for status in Agent.Status.values}
    agents.update(dict(Agent.objects.values_list("status").annotate(n=Count("id")).order_by("status")))
    try:
        queue_depth, head_score = engine.queue_depth(schema_name=current_schema())
        oldest_wait = (
            0.0 if head_score is None else max(0.0, now.timestamp() - engine.queue_score_decode(head_score)[1] / 1000)
        )
    except (engine.EngineUnavailable, RedisError):
        queued = Call.objects.filter(status=Call.Status.QUEUED).aggregate(n=Count("id"), oldest=Min("queued_at"))
        queue_depth = queued["n"]
        oldest_wait = (now - queued["oldest"]).total_seconds() if queued["oldest"] else 0.0
    return {
        "time": now,
        "agents": agents,
        "agents_total": sum(agents.values()),
        "queue_depth": queue_depth,
        "oldest_wait_seconds": round(oldest_wait, 3),
        "active_calls": Call.objects.filter(status=Call.Status.ASSIGNED).count(),
    }


def system_status() -> dict[str, Any]:
    """The caller's tenant right now (``tenant_live_state``) and the services it depends on."""
    from callcenter.health import check_database, check_redis, heartbeat_checks, timed

    return {
        "tenant": current_schema(),
        **tenant_live_state(),
        "services": {"database": timed(check_database), "redis": timed(check_redis), **heartbeat_checks()},
    }


def system_metrics() -> dict[str, Any]:
    """The caller's tenant's KPIs (definitions in docs/metrics.md); cached for one second."""
    schema_name = current_schema()
    cache_key = f"system-metrics:{schema_name}"
    cached = cache.get(cache_key)
    if cached is not None:
        return dict(cached)
    now = timezone.now()
    settings = RoutingSettings.objects.get_or_create(id=ROUTING_SETTINGS_ID)[0]
    threshold = datetime.timedelta(seconds=settings.service_level_seconds)
    totals = Call.objects.aggregate(
        calls_total=Count("id"),
        calls_assigned=Count("id", filter=Q(assigned_at__isnull=False)),
        calls_completed=Count("id", filter=Q(status=Call.Status.COMPLETED)),
        calls_saturated=Count("id", filter=Q(status=Call.Status.SATURATED)),
        calls_abandoned=Count("id", filter=Q(status=Call.Status.ABANDONED)),
        calls_cancelled=Count("id", filter=Q(status=Call.Status.CANCELLED)),
        calls_queued=Count("id", filter=Q(status=Call.Status.QUEUED)),
        calls_active=Count("id", filter=Q(status=Call.Status.ASSIGNED)),
        outcomes_ok=Count("id", filter=Q(outcome=Call.Outcome.OK)),
        outcomes_ko=Count("id", filter=Q(outcome=Call.Outcome.KO)),
    )
    window = Call.objects.filter(created_at__gte=now - SERVICE_LEVEL_WINDOW).aggregate(
        answered_in_time=Count("id", filter=Q(assigned_at__isnull=False, assigned_at__lte=F("created_at") + threshold)),
        answered=Count("id", filter=Q(assigned_at__isnull=False)),
        lost=Count("id", filter=Q(status__in=[Call.Status.ABANDONED, Call.Status.SATURATED])),
        waiting_too_long=Count("id", filter=Q(status=Call.Status.QUEUED, queued_at__lte=now - threshold)),
    )
    offered = window["answered"] + window["lost"] + window["waiting_too_long"]
    agents = dict(Agent.objects.values_list("status").annotate(n=Count("id")).order_by("status"))
    working = agents.get(Agent.Status.BUSY, 0) + agents.get(Agent.Status.WRAP_UP, 0)
    staffed = working + agents.get(Agent.Status.AVAILABLE, 0)
    decided = totals["outcomes_ok"] + totals["outcomes_ko"]
    cells: dict[str, dict[str, Any]] = {}
    configured = {
        (r.agent_type.slug, r.call_type.slug): r.p_ok
        for r in ConversionRate.objects.select_related("agent_type", "call_type")
    }
    observed = (
        Call.objects.filter(status=Call.Status.COMPLETED, outcome__isnull=False, agent__isnull=False)
        .values_list("agent__agent_type__slug", "call_type__slug")
        .annotate(ok=Count("id", filter=Q(outcome=Call.Outcome.OK)), n=Count("id"))
    )
    seen = {(a, c): (ok, n) for a, c, ok, n in observed}
    for (agent_type, call_type), rate in sorted(configured.items()):
        ok, n = seen.get((agent_type, call_type), (0, 0))
        cells[f"{agent_type}/{call_type}"] = {
            "configured": rate,
            "observed": round(ok / n, 4) if n else None,
            "calls": n,
        }
    latency = metrics.latency_summary(schema_name=schema_name)
    result = {
        "tenant": schema_name,
        "time": now,
        "calls_assigned": totals["calls_assigned"],
        "calls_completed": totals["calls_completed"],
        "calls_saturated": totals["calls_saturated"],
        "calls_abandoned": totals["calls_abandoned"],
        "calls_cancelled": totals["calls_cancelled"],
        "calls_total": totals["calls_total"],
        "active_calls": totals["calls_active"],
        "queue_depth": totals["calls_queued"],
        "last_assignment_time_ms": latency["last_ms"],
        "assignment_time_ms": {k: latency[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "samples")},
        "avg_conversion_rate": round(totals["outcomes_ok"] / decided, 4) if decided else None,
        "agent_utilization": round(working / staffed, 4) if staffed else None,
        "service_level": round(window["answered_in_time"] / offered, 4) if offered else None,
        "service_level_seconds": settings.service_level_seconds,
        "service_level_window_seconds": int(SERVICE_LEVEL_WINDOW.total_seconds()),
        "conversion_by_cell": cells,
    }
    cache.set(cache_key, result, 1)
    return result
