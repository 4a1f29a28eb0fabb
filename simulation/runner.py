"""The simulation driver behind ``manage.py simulate`` (and ``demo``): Poisson arrivals with the
tenant's call-type mix, through the same services as the API, then the statistical report.

Completion: simulated calls complete themselves through Celery (``simulation.tasks``). When no
worker answers, the driver completes them itself, on time, and says so.
"""

from __future__ import annotations

import datetime
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from django.db import close_old_connections
from django.utils import timezone

from agents.models import Agent, AgentType
from agents.services import agent_create, agent_set_status
from assignment.models import Assignment, RoutingSettings
from assignment.services.config import SETTINGS_FIELDS, routing_config, routing_settings_update
from assignment.services.recovery import engine_drift
from calls.models import Call, CallType
from calls.services import call_create
from simulation import stats
from simulation.models import SimulationRun
from simulation.services import SIMULATOR, simulated_call_finish


@dataclass
class SimulationOptions:
    calls: int = 100
    agents: int = 20
    rate: float | None = None  # arrivals per simulated second; default: 85 % occupancy
    time_scale: float = 100.0
    seed: int = 42
    strategy: str | None = None
    duration_model: str | None = None
    stress_minutes: float | None = None
    no_wait_limit: bool = False
    inline_completion: bool | None = None  # None: only when no Celery worker answers
    source: str = "simulate"


@dataclass
class RunOutcome:
    run: SimulationRun
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _truncated_mean(settings: RoutingSettings) -> float:
    return float(
        stats.truncated_distribution(
            settings.duration_model,
            settings.duration_mean_seconds,
            settings.duration_std_seconds,
            settings.duration_min_seconds,
            settings.duration_max_seconds,
        ).mean()
    )


def ensure_agents(count: int) -> list[Agent]:
    """Exactly ``count`` simulation agents, spread over the agent types, all AVAILABLE, in order."""
    types = list(AgentType.objects.order_by("slug"))
    agents = list(Agent.objects.filter(simulated=True).order_by("name", "id"))
    for index in range(len(agents), count):
        agents.append(
            agent_create(
                name=f"sim agent {index:04d}",
                agent_type=types[index % len(types)],
                status="OFFLINE",
                simulated=True,
                actor=SIMULATOR,
            )
        )
    agents = agents[:count]
    for agent in agents:
        if agent.status == Agent.Status.BUSY:
            continue
        if agent.status != Agent.Status.AVAILABLE:
            agent_set_status(agent=agent, status=Agent.Status.AVAILABLE, actor=SIMULATOR)
    return agents


def _workers_answer() -> bool:
    from callcenter.health import heartbeat_checks

    # No broker or no worker: either way nobody will run the tasks.
    return bool(heartbeat_checks()["workers"]["status"] == "up")


def run_simulation(options: SimulationOptions, progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Drive one run in the current tenant schema and return its report. Routing settings changed
    for the run (strategy, duration model, wait limit) are restored afterwards."""
    notes: list[str] = []
    saved = {name: getattr(routing_config(force=True).settings, name) for name in SETTINGS_FIELDS}
    changes: dict[str, Any] = {}
    if options.strategy:
        changes["strategy"] = options.strategy
    if options.duration_model:
        changes["duration_model"] = options.duration_model
    if options.no_wait_limit:
        changes["max_wait_seconds"] = 86_400
        changes["max_queue_length"] = max(saved["max_queue_length"], options.calls + 10)
    if changes:
        routing_settings_update(changes=changes, actor=SIMULATOR)
    try:
        return _run(options, notes, progress)
    finally:
        if changes:
            routing_settings_update(changes={k: saved[k] for k in changes}, actor=SIMULATOR)


def _run(options: SimulationOptions, notes: list[str], progress: Callable[[str], None] | None) -> RunOutcome:
    config = routing_config(force=True)
    settings = config.settings
    agents = ensure_agents(options.agents)
    mean_duration = _truncated_mean(settings)
    rate = options.rate or 0.85 * options.agents / mean_duration
    inline = options.inline_completion
    if inline is None:
        inline = not _workers_answer()
        if inline:
            notes.append("No Celery worker answered: the simulator completed the calls itself, on time.")
    total = options.calls
    if options.stress_minutes:
        total = max(total, int(rate * options.time_scale * options.stress_minutes * 60))
    run = SimulationRun.objects.create(
        seed=options.seed,
        strategy=settings.strategy,
        rate_per_second=rate,
        time_scale=options.time_scale,
        calls_planned=total,
        agents=len(agents),
        source=options.source,
        complete_with_celery=not inline,
    )
    rng = np.random.default_rng(options.seed)
    call_types = sorted(config.call_types_by_slug.values(), key=lambda c: c.slug)
    weights = np.array([c.mix_weight for c in call_types], dtype=float)
    weights = weights / weights.sum()
    gaps = rng.exponential(1.0 / rate, size=total) / options.time_scale
    kinds = rng.choice(len(call_types), size=total, p=weights)
    start = time.monotonic()
    arrival = start
    last_progress = 0.0
    for index in range(total):
        arrival += float(gaps[index])
        while True:
            now = time.monotonic()
            if inline:
                _complete_due(run)
            if now >= arrival:
                break
            time.sleep(min(arrival - now, 0.01))
        call_create(
            phone_number=f"+3469{index:08d}",
            call_type=call_types[int(kinds[index])],
            actor=SIMULATOR,
            simulation_run=run,
            simulation_sequence=index,
        )
        if progress and time.monotonic() - last_progress > 1:
            last_progress = time.monotonic()
            progress(_progress_line(run, index + 1, total))
    deadline = time.monotonic() + settings.duration_max_seconds / options.time_scale + 120
    while Call.objects.filter(simulation_run=run, status__in=Call.OPEN).exists():
        if time.monotonic() > deadline:
            notes.append("Timed out waiting for calls to finish.")
            break
        if inline:
            _complete_due(run)
        time.sleep(0.02)
        if progress and time.monotonic() - last_progress > 1:
            last_progress = time.monotonic()
            progress(_progress_line(run, total, total))
        close_old_connections()
    run.finished_at = timezone.now()
    run.status = SimulationRun.Status.FINISHED
    report = build_report(run=run, agents=len(agents), notes=notes)
    run.report = report
    run.save(update_fields=["finished_at", "status", "report", "updated_at"])
    return RunOutcome(run=run, report=report, notes=notes)


def _complete_due(run: SimulationRun) -> None:
    for call_id in Call.objects.filter(
        simulation_run=run, status=Call.Status.ASSIGNED, expected_end_at__lte=timezone.now()
    ).values_list("id", flat=True):
        simulated_call_finish(call_id=call_id)


def _progress_line(run: SimulationRun, sent: int, total: int) -> str:
    counts = Counter(Call.objects.filter(simulation_run=run).values_list("status", flat=True))
    done = sum(counts[s] for s in Call.TERMINAL)
    width = 30
    filled = int(width * done / max(total, 1))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} done, {sent} arrived, "
        f"{counts['ASSIGNED']} talking, {counts['QUEUED']} waiting"
    )


def build_report(*, run: SimulationRun, agents: int, notes: list[str]) -> dict[str, Any]:
    settings = routing_config(force=True).settings
    calls = list(
        Call.objects.filter(simulation_run=run)
        .select_related("call_type", "agent__agent_type")
        .order_by("created_at", "id")
    )
    checks: dict[str, Any] = {}
    checks["latency"] = stats.latency_check(
        [c.assignment_time_ms for c in calls if c.assignment_time_ms is not None], settings.max_assignment_time_ms
    )
    weights = {c.slug: c.mix_weight for c in CallType.objects.all()}
    checks["call_type_mix"] = stats.mix_check(Counter(c.call_type.slug for c in calls), weights)
    cells: dict[tuple[str, str], list[int]] = {}
    config = routing_config()
    configured = {
        (config.agent_types_by_id[a].slug, config.call_types_by_id[c].slug): p for (a, c), p in config.p_ok.items()
    }
    for cell in configured:
        cells[cell] = [0, 0]
    for c in calls:
        if c.status == Call.Status.COMPLETED and c.outcome and c.agent is not None:
            cell = (c.agent.agent_type.slug, c.call_type.slug)
            cells[cell][1] += 1
            cells[cell][0] += 1 if c.outcome == Call.Outcome.OK else 0
    checks["conversion"] = stats.conversion_check({k: (v[0], v[1]) for k, v in cells.items()}, configured)
    checks["durations"] = stats.duration_check(
        [c.planned_duration_seconds for c in calls if c.planned_duration_seconds is not None],
        settings.duration_model,
        settings.duration_mean_seconds,
        settings.duration_std_seconds,
        settings.duration_min_seconds,
        settings.duration_max_seconds,
    )
    checks["invariants"] = invariants_check(run)
    if settings.duration_model == "exponential" and settings.max_wait_seconds >= 86_400:
        checks["erlang_c"] = erlang_check(
            calls, agents=agents, time_scale=run.time_scale, sl_seconds=settings.service_level_seconds
        )
    completed = [c for c in calls if c.status == Call.Status.COMPLETED and c.outcome]
    ok_calls = sum(1 for c in completed if c.outcome == Call.Outcome.OK)
    low, high = stats.proportion_interval(ok_calls, len(completed))
    by_status = Counter(c.status for c in calls)
    return {
        "run_id": str(run.id),
        "seed": run.seed,
        "strategy": run.strategy,
        "agents": agents,
        "calls": len(calls),
        "rate_per_simulated_second": round(run.rate_per_second, 5),
        "time_scale": run.time_scale,
        "duration_model": settings.duration_model,
        "statuses": dict(by_status),
        "conversion_rate": round(ok_calls / len(completed), 4) if completed else None,
        "conversion_interval": [round(low, 4), round(high, 4)],
        "completed_by_sweep": sum(1 for c in calls if c.end_reason == "completed_by_sweep"),
        "checks": checks,
        "ok": all(check["ok"] for check in checks.values()),
        "notes": notes,
    }


def invariants_check(run: SimulationRun) -> dict[str, Any]:
    calls = Call.objects.filter(simulation_run=run)
    open_calls = calls.filter(status__in=Call.OPEN).count()
    unknown = calls.exclude(status__in=Call.Status.values).count()
    overlaps = 0
    by_agent: dict[Any, list[tuple[datetime.datetime, datetime.datetime | None]]] = {}
    for agent_id, created, ended in (
        Assignment.objects.filter(call__simulation_run=run)
        .order_by("created_at")
        .values_list("agent_id", "created_at", "ended_at")
    ):
        by_agent.setdefault(agent_id, []).append((created, ended))
    for spans in by_agent.values():
        for (_, end), (start, _) in pairwise(spans):
            if end is None or end > start:
                overlaps += 1
    drift = engine_drift()
    return {
        "ok": open_calls == 0 and unknown == 0 and overlaps == 0 and not drift,
        "calls_not_terminal": open_calls,
        "calls_in_unknown_state": unknown,
        "agents_holding_two_calls": overlaps,
        "redis_equals_postgres": not drift,
        "drift": drift.summary() if drift else "",
    }


def erlang_check(calls: list[Call], *, agents: int, time_scale: float, sl_seconds: int) -> dict[str, Any]:
    """Measured P(wait), ASA, service level and occupancy against Erlang C for the measured arrival
    rate and handle time. The first 10 % of calls (the empty-system warm-up) are left out; the
    intervals are batch-means intervals (waits in a queue are correlated)."""
    answered = [c for c in calls if c.assigned_at is not None and c.ended_at is not None]
    if len(answered) < 50:
        return {"ok": True, "note": "too few calls for an Erlang C comparison"}
    arrivals = [c.created_at for c in calls]
    span = (arrivals[-1] - arrivals[0]).total_seconds() * time_scale
    arrival_rate = (len(arrivals) - 1) / span
    handle = [(c.ended_at - c.assigned_at).total_seconds() * time_scale for c in answered]  # type: ignore[operator]
    handle_time = float(np.mean(handle))
    steady = answered[len(answered) // 10 :]
    waits = [max(0.0, (c.assigned_at - c.created_at).total_seconds() * time_scale) for c in steady]  # type: ignore[operator]
    waited = [1.0 if c.queued_at is not None else 0.0 for c in steady]
    within = [1.0 if w <= sl_seconds else 0.0 for w in waits]
    predicted = stats.erlang_c(arrival_rate, handle_time, agents)
    predicted_sl = stats.erlang_service_level(arrival_rate, handle_time, agents, sl_seconds)
    figures = {}
    ok = True
    for name, values, expected, tolerance in (
        ("p_wait", waited, predicted["p_wait"], 0.02),
        ("asa_seconds", waits, predicted["asa"], 2.0),
        (f"service_level_{sl_seconds}s", within, predicted_sl, 0.02),
    ):
        mean, low, high = stats.batch_means_interval(values)
        agrees = (low - tolerance) <= expected <= (high + tolerance)
        ok = ok and agrees
        figures[name] = {
            "measured": round(mean, 4),
            "interval": [round(low, 4), round(high, 4)],
            "erlang_c": round(float(expected), 4),
            "ok": agrees,
        }
    busy_time = sum(handle)
    occupancy = busy_time / (agents * span) if span else math.nan
    figures["occupancy"] = {"measured": round(occupancy, 4), "erlang_c": round(predicted["occupancy"], 4)}
    return {
        "ok": ok,
        "test": "Erlang C (M/M/c) vs measured, batch-means 95 % intervals",
        "arrival_rate_per_second": round(arrival_rate, 6),
        "handle_time_seconds": round(handle_time, 3),
        "agents": agents,
        "offered_erlangs": round(predicted["offered_erlangs"], 3),
        "warm_up_calls_left_out": len(answered) - len(steady),
        "figures": figures,
    }


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")


def print_report(report: dict[str, Any], write: Callable[[str], Any] = _write_line) -> None:
    write(f"Simulation {report['run_id']} (seed {report['seed']}, strategy {report['strategy']}, "
          f"{report['agents']} agents, {report['calls']} calls, time scale {report['time_scale']})")  # fmt: skip
    write(f"  statuses: {report['statuses']}; conversion {report['conversion_rate']} {report['conversion_interval']}")
    for name, check in report["checks"].items():
        mark = "PASS" if check["ok"] else "FAIL"
        detail = {k: v for k, v in check.items() if k not in ("ok", "cells", "figures", "observed", "expected")}
        write(f"  [{mark}] {name}: {detail}")
        if name == "conversion":
            for cell, figures in check["cells"].items():
                if figures["calls"]:
                    flag = "" if figures["ok"] else "  <-- outside"
                    write(f"         {cell}: configured {figures['configured']}, observed {figures['observed']} "
                          f"of {figures['calls']}, interval {figures['interval']}{flag}")  # fmt: skip
        if name == "erlang_c":
            for figure, values in check["figures"].items():
                write(f"         {figure}: {values}")
    for note in report.get("notes", []):
        write(f"  note: {note}")
    write("RESULT: " + ("all checks passed" if report["ok"] else "some checks FAILED"))
