"""What the supervisor dashboard shows: one read of the tenant's live state.

``dashboard_state`` is the one data endpoint the page polls. Its cost is a fixed number of queries
whatever the number of agents or calls (pinned by a test): every list is read with one query and
joined in Python, every count and percentile is an aggregate, and the configuration comes from the
routing snapshot (cached). Each figure can be narrowed to real or to simulated traffic. Today's
figures start at midnight UTC.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.db.models import Aggregate, Avg, Count, F, FloatField, Min, Q, QuerySet, TextChoices
from django.db.models.functions import TruncMinute
from django.utils import timezone

from agents.models import Agent
from calls.models import Call
from routing.services import routing_config
from simulation.models import SimulationRun
from simulation.selectors import simulation_run_latest
from webhooks.selectors import webhook_endpoints_disabled_by_failures

QUEUE_LIST_LIMIT = 50
SERIES_MINUTES = 60
# Where a KPI turns amber: a share of its red threshold (e.g. latency at 50 % of the alert threshold).
WARN_SHARE = 0.5


class Percentile(Aggregate):
    """Postgres ``percentile_cont(p) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, *, percentile: float, **extra: Any) -> None:
        if not 0 <= percentile <= 1:
            raise ValueError("percentile must lie in [0, 1]")
        super().__init__(expression, percentile=repr(float(percentile)), **extra)


class Traffic(TextChoices):
    """Which traffic the dashboard shows: simulated agents and calls are kept apart from real ones."""

    ALL = "all"
    REAL = "real"
    SIMULATED = "simulated"


def _calls(traffic: str) -> QuerySet[Call]:
    calls = Call.objects.all()
    return calls if traffic == Traffic.ALL else calls.filter(simulated=traffic == Traffic.SIMULATED)


def _agents(traffic: str) -> QuerySet[Agent]:
    agents = Agent.objects.all()
    return agents if traffic == Traffic.ALL else agents.filter(simulated=traffic == Traffic.SIMULATED)


def _day_start(now: datetime.datetime) -> datetime.datetime:
    return now.astimezone(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _seconds(later: datetime.datetime, earlier: datetime.datetime | None) -> float | None:
    return None if earlier is None else round(max(0.0, (later - earlier).total_seconds()), 1)


def _rate(ok: int, decided: int) -> float | None:
    return round(ok / decided, 4) if decided else None


def _level(value: float | None, *, bad: float, warn: float, higher_is_better: bool) -> str:
    """``ok``, ``warn`` or ``bad`` for a KPI against its thresholds; ``none`` without data."""
    if value is None:
        return "none"
    if higher_is_better:
        return "bad" if value < bad else "warn" if value < warn else "ok"
    return "bad" if value > bad else "warn" if value > warn else "ok"


def _lost_calls(count: int, offered: int, *, warn: float) -> dict[str, Any]:
    """A KPI of calls lost (saturated or abandoned): its count, its share of the offered calls and
    its colour (bad from 10 %)."""
    share = count / offered if offered else None
    return {
        "value": count,
        "share": None if share is None else round(share, 4),
        "level": _level(share, bad=0.10, warn=warn, higher_is_better=False),
        "threshold": "10 % of offered calls",
    }


def dashboard_agents(*, now: datetime.datetime, traffic: str = Traffic.ALL) -> list[dict[str, Any]]:
    """Every agent with its status, time in status, current call and today's results: three queries."""
    day_start = _day_start(now)
    rows = (
        _agents(traffic)
        .order_by("name", "id")
        .values_list("id", "name", "agent_type_id", "status", "status_changed_at", "idle_since", "simulated")
    )
    active = {
        agent_id: (call_id, call_type_id, assigned_at)
        for agent_id, call_id, call_type_id, assigned_at in Call.objects.filter(
            status=Call.Status.ASSIGNED
        ).values_list("agent_id", "id", "call_type_id", "assigned_at")
    }
    today = {
        row["agent_id"]: row
        for row in Call.objects.filter(status=Call.Status.COMPLETED, ended_at__gte=day_start, agent_id__isnull=False)
        .values("agent_id")
        .annotate(
            handled=Count("id"),
            ok=Count("id", filter=Q(outcome=Call.Outcome.OK)),
            decided=Count("id", filter=Q(outcome__isnull=False)),
        )
        .order_by()
    }
    agents = []
    for agent_id, name, agent_type_id, status, changed_at, idle_since, simulated in rows:
        call = active.get(agent_id)
        results = today.get(agent_id, {"handled": 0, "ok": 0, "decided": 0})
        agents.append(
            {
                "id": str(agent_id),
                "name": name,
                "simulated": simulated,
                "type": agent_type_id,
                "status": status,
                "in_status_seconds": _seconds(now, idle_since if status == Agent.Status.AVAILABLE else changed_at),
                "call": None
                if call is None
                else {"id": str(call[0]), "type": call[1], "talk_seconds": _seconds(now, call[2])},
                "handled_today": results["handled"],
                "conversion_today": _rate(results["ok"], results["decided"]),
            }
        )
    return agents


def dashboard_queue(*, now: datetime.datetime, traffic: str = Traffic.ALL) -> dict[str, Any]:
    """Depth, oldest wait and the first waiting calls in the order they will be answered."""
    waiting = _calls(traffic).filter(status=Call.Status.QUEUED)
    summary = waiting.aggregate(depth=Count("id"), oldest=Min("queued_at"))
    first = waiting.order_by("-priority", "queued_at", "id").values_list("id", "call_type_id", "priority", "queued_at")
    return {
        "depth": summary["depth"],
        "oldest_wait_seconds": _seconds(now, summary["oldest"]) or 0.0,
        "calls": [
            {"id": str(call_id), "type": call_type_id, "priority": priority, "wait_seconds": _seconds(now, queued_at)}
            for call_id, call_type_id, priority, queued_at in first[:QUEUE_LIST_LIMIT]
        ],
    }


def dashboard_kpis(
    *, now: datetime.datetime, agents: list[dict[str, Any]], traffic: str = Traffic.ALL
) -> dict[str, Any]:
    """Today's KPIs, each with its value, its thresholds and a level (ok, warn, bad, none).
    Definitions: docs/dashboard.md (the same as docs/metrics.md where both have the figure)."""
    settings = routing_config().settings
    threshold = datetime.timedelta(seconds=settings.service_level_seconds)
    target = settings.service_level_target
    totals = (
        _calls(traffic)
        .filter(created_at__gte=_day_start(now))
        .aggregate(
            arrived=Count("id"),
            assigned=Count("id", filter=Q(assigned_at__isnull=False)),
            completed=Count("id", filter=Q(status=Call.Status.COMPLETED)),
            saturated=Count("id", filter=Q(status=Call.Status.SATURATED)),
            abandoned=Count("id", filter=Q(status=Call.Status.ABANDONED)),
            answered_in_time=Count(
                "id", filter=Q(assigned_at__isnull=False, assigned_at__lte=F("created_at") + threshold)
            ),
            waiting_too_long=Count("id", filter=Q(status=Call.Status.QUEUED, queued_at__lte=now - threshold)),
            ok=Count("id", filter=Q(outcome=Call.Outcome.OK)),
            decided=Count("id", filter=Q(outcome__isnull=False)),
            asa=Avg(F("assigned_at") - F("created_at"), filter=Q(assigned_at__isnull=False)),
            latency_p50=Percentile("assignment_time_ms", percentile=0.5),
            latency_p99=Percentile("assignment_time_ms", percentile=0.99),
        )
    )
    offered = totals["assigned"] + totals["saturated"] + totals["abandoned"] + totals["waiting_too_long"]
    service_level = round(totals["answered_in_time"] / offered, 4) if offered else None
    asa = round(totals["asa"].total_seconds(), 1) if totals["asa"] is not None else None
    by_status: dict[str, int] = {status: 0 for status in Agent.Status.values}
    for agent in agents:
        by_status[agent["status"]] += 1
    working = by_status[Agent.Status.BUSY] + by_status[Agent.Status.WRAP_UP]
    staffed = working + by_status[Agent.Status.AVAILABLE]
    occupancy = round(working / staffed, 4) if staffed else None
    latency = {
        "p50_ms": None if totals["latency_p50"] is None else round(totals["latency_p50"], 3),
        "p99_ms": None if totals["latency_p99"] is None else round(totals["latency_p99"], 3),
    }
    limit_ms = settings.max_assignment_time_ms
    lost_share = (totals["saturated"] + totals["abandoned"]) / offered if offered else None
    return {
        "arrived": {"value": totals["arrived"], "level": "none"},
        "assigned": {"value": totals["assigned"], "level": "none"},
        "completed": {"value": totals["completed"], "level": "none"},
        "saturated": _lost_calls(totals["saturated"], offered, warn=0.02),
        "abandoned": _lost_calls(totals["abandoned"], offered, warn=0.05),
        "service_level": {
            "value": service_level,
            "target": target,
            "seconds": settings.service_level_seconds,
            "level": _level(service_level, bad=target, warn=min(1.0, target + 0.05), higher_is_better=True),
        },
        "asa_seconds": {
            "value": asa,
            "threshold": settings.service_level_seconds,
            "level": _level(
                asa,
                bad=settings.service_level_seconds,
                warn=settings.service_level_seconds * WARN_SHARE,
                higher_is_better=False,
            ),
        },
        "occupancy": {
            "value": occupancy,
            "level": _level(occupancy, bad=0.95, warn=0.90, higher_is_better=False),
            "threshold": "95 %",
        },
        "conversion": {"value": _rate(totals["ok"], totals["decided"]), "calls": totals["decided"], "level": "none"},
        "latency_p50_ms": {
            "value": latency["p50_ms"],
            "threshold": limit_ms,
            "level": _level(latency["p50_ms"], bad=limit_ms, warn=limit_ms * WARN_SHARE, higher_is_better=False),
        },
        "latency_p99_ms": {
            "value": latency["p99_ms"],
            "threshold": limit_ms,
            "level": _level(latency["p99_ms"], bad=limit_ms, warn=limit_ms * WARN_SHARE, higher_is_better=False),
        },
        "lost_share": lost_share,
    }


def dashboard_series(*, now: datetime.datetime, traffic: str = Traffic.ALL) -> dict[str, Any]:
    """Arrivals and assignment latency (p50, p99) per minute over the last hour: one query."""
    end = now.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    start = end - datetime.timedelta(minutes=SERIES_MINUTES)
    rows = (
        _calls(traffic)
        .filter(created_at__gte=start)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(
            arrivals=Count("id"),
            p50=Percentile("assignment_time_ms", percentile=0.5),
            p99=Percentile("assignment_time_ms", percentile=0.99),
        )
        .order_by("minute")
    )
    by_minute = {row["minute"]: row for row in rows}
    minutes = [start + datetime.timedelta(minutes=i) for i in range(SERIES_MINUTES)]
    empty: Mapping[str, Any] = {"arrivals": 0, "p50": None, "p99": None}
    picked = [by_minute.get(minute, empty) for minute in minutes]
    return {
        "start": start,
        "minutes": [minute.strftime("%H:%M") for minute in minutes],
        "arrivals": [row["arrivals"] for row in picked],
        "latency_p50_ms": [None if row["p50"] is None else round(row["p50"], 3) for row in picked],
        "latency_p99_ms": [None if row["p99"] is None else round(row["p99"], 3) for row in picked],
    }


def dashboard_conversion(*, now: datetime.datetime, traffic: str = Traffic.ALL) -> dict[str, Any]:
    """The conversion matrix as configured and as observed today, cell by cell: one query."""
    config = routing_config()
    observed = {
        (agent_type_id, call_type_id): (ok, n)
        for agent_type_id, call_type_id, ok, n in _calls(traffic)
        .filter(status=Call.Status.COMPLETED, outcome__isnull=False, agent__isnull=False, ended_at__gte=_day_start(now))
        .values_list("agent__agent_type_id", "call_type_id")
        .annotate(ok=Count("id", filter=Q(outcome=Call.Outcome.OK)), n=Count("id"))
        .order_by()
    }
    agent_types = sorted(config.agent_types_by_id.values(), key=lambda a: a.slug)
    call_types = sorted(config.call_types_by_id.values(), key=lambda c: c.slug)
    return {
        "agent_types": [a.id for a in agent_types],
        "call_types": [c.id for c in call_types],
        "cells": [
            [
                {
                    "configured": config.p_ok.get((a.id, c.id)),
                    "observed": _rate(*observed.get((a.id, c.id), (0, 0))),
                    "calls": observed.get((a.id, c.id), (0, 0))[1],
                }
                for c in call_types
            ]
            for a in agent_types
        ],
    }


def dashboard_staffing() -> dict[str, Any] | None:
    """The newest staffing study (``simulate --staffing``), as the chart needs it: service level by
    number of agents, simulated and by Erlang C, the target and the smallest staff that meets it.
    None when the tenant has none (the chart shows how to make one)."""
    run = simulation_run_latest(kind=SimulationRun.Kind.STAFFING)
    study = run.report.get("staffing") if run is not None and isinstance(run.report, dict) else None
    if run is None or not isinstance(study, dict) or not isinstance(study.get("rows"), list):
        return None
    rows = []
    for row in study["rows"]:
        simulated = row.get("simulated") or {}
        erlang = row.get("erlang_c") or {}
        rows.append(
            {
                "agents": row.get("agents"),
                "service_level": simulated.get("service_level"),
                "erlang_c_service_level": erlang.get("service_level"),
                "asa_seconds": simulated.get("asa_seconds"),
                "occupancy": simulated.get("occupancy"),
            }
        )
    return {
        "run_id": str(run.id),
        "finished_at": run.finished_at,
        "target": study.get("service_level_target"),
        "service_level_seconds": study.get("service_level_seconds"),
        "recommended_agents": study.get("smallest_staff_meeting_target"),
        "erlang_c_agents": study.get("erlang_c_smallest_staff"),
        "offered_erlangs": study.get("offered_erlangs"),
        "rows": rows,
    }


def dashboard_simulation() -> dict[str, Any] | None:
    """The newest run started from the dashboard, with its progress: two queries."""
    run = (
        SimulationRun.objects.filter(source="dashboard", kind=SimulationRun.Kind.RUN)
        .defer("report")
        .order_by("-started_at")
        .first()
    )
    if run is None:
        return None
    counts = dict(
        Call.objects.filter(simulation_run=run).values_list("status").annotate(n=Count("id")).order_by("status")
    )
    return {
        "id": str(run.id),
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "calls_planned": run.calls_planned,
        "calls_created": sum(counts.values()),
        "calls_open": counts.get(Call.Status.QUEUED, 0) + counts.get(Call.Status.ASSIGNED, 0),
        "calls_per_hour": round(run.rate_per_second * 3600, 2),
        "calls_per_minute": round(run.rate_per_second * run.time_scale * 60, 2),
        "time_scale": run.time_scale,
        "agents": run.agents,
        "seed": run.seed,
    }


def dashboard_state(*, can_operate: bool, traffic: str = Traffic.ALL) -> dict[str, Any]:
    """Everything the dashboard shows, in one answer (see the module docstring for its cost)."""
    now = timezone.now()
    config = routing_config()
    agents = dashboard_agents(now=now, traffic=traffic)
    return {
        "time": now,
        "can_operate": can_operate,
        "traffic": traffic,
        "settings": {
            "strategy": config.settings.strategy,
            "service_level_seconds": config.settings.service_level_seconds,
            "max_assignment_time_ms": config.settings.max_assignment_time_ms,
        },
        "agent_types": [
            {"id": a.id, "slug": a.slug, "name": a.name}
            for a in sorted(config.agent_types_by_id.values(), key=lambda a: a.slug)
        ],
        "call_types": [
            {"id": c.id, "slug": c.slug, "name": c.name}
            for c in sorted(config.call_types_by_id.values(), key=lambda c: c.slug)
        ],
        "agents": agents,
        "queue": dashboard_queue(now=now, traffic=traffic),
        "kpis": dashboard_kpis(now=now, agents=agents, traffic=traffic),
        "series": dashboard_series(now=now, traffic=traffic),
        "conversion": dashboard_conversion(now=now, traffic=traffic),
        "staffing": dashboard_staffing(),
        "simulation": dashboard_simulation(),
        "webhooks_disabled": [
            {
                "id": str(row["id"]),
                "url": row["url"],
                "reason": row["disabled_reason"],
                "disabled_at": row["updated_at"],
            }
            for row in webhook_endpoints_disabled_by_failures()
        ],
    }
