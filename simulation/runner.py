"""The simulation driver behind ``manage.py simulate`` (and ``demo``): Poisson arrivals with the
tenant's call-type mix, through the same services as the API, then the statistical report.

Two clocks. By default a run is a discrete-event simulation on a simulated clock
(``simulation.virtual``): reproducible, no waiting, no lag. ``live`` runs in real time: Celery
workers complete the calls on time (scaled by ``time_scale``); when no worker answers, the driver
completes them itself. A live report adds the completion lag and a KS test of the realised talk
time, and marks the run unreliable when the lag or the arrivals' delay distorts what it measures.

A run's settings (strategy, duration model, no wait limit) override the tenant's for the run's own
calls only (``routing_overrides``, stored on the run for the workers): real traffic in the same
tenant keeps the tenant's settings. One run at a time per tenant: its simulated agents are shared.
"""

from __future__ import annotations

import datetime
import sys
import time
import uuid
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
from assignment.models import RoutingSettings
from assignment.services.recovery import engine_drift
from callcenter.errors import ApplicationError
from calls.models import Call
from calls.services import call_create
from routing.services import routing_config, routing_overrides
from simulation import stats
from simulation.models import SimulationRun
from simulation.selectors import simulation_runs_active
from simulation.services import SIMULATOR, simulated_call_finish
from simulation.virtual import run_virtual


@dataclass
class SimulationOptions:
    calls: int = 100
    agents: int = 20
    rate: float | None = None  # arrivals per simulated second; default: 85 % occupancy
    time_scale: float = 100.0  # live only: simulated seconds per real second
    seed: int = 42
    strategy: str | None = None
    duration_model: str | None = None
    stress_minutes: float | None = None  # live only
    no_wait_limit: bool = False
    inline_completion: bool | None = None  # live only; None: only when no Celery worker answers
    source: str = "simulate"
    live: bool = False
    kind: str = SimulationRun.Kind.RUN

    def overrides(self, current_max_queue_length: int) -> dict[str, Any]:
        """The routing settings this run uses in place of the tenant's."""
        changes: dict[str, Any] = {}
        if self.strategy:
            changes["strategy"] = self.strategy
        if self.duration_model:
            changes["duration_model"] = self.duration_model
        if self.no_wait_limit:
            changes["max_wait_seconds"] = NO_WAIT_LIMIT
            changes["max_queue_length"] = max(current_max_queue_length, self.calls + 10)
        return changes


NO_WAIT_LIMIT = 86_400


@dataclass
class RunOutcome:
    run: SimulationRun
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def truncated_mean(settings: RoutingSettings) -> float:
    return float(
        stats.truncated_distribution(
            settings.duration_model,
            settings.duration_mean_seconds,
            settings.duration_std_seconds,
            settings.duration_min_seconds,
            settings.duration_max_seconds,
        ).mean()
    )


SIMULATED_AGENT_IDS = uuid.UUID("5f0c1c6e-7a4e-4c52-9d0a-3f1e2b7c9a10")


def ensure_agents(count: int) -> list[Agent]:
    """Exactly ``count`` simulated agents (``Agent.simulated``), spread over the agent types, in name
    order; missing ones are created OFFLINE. Their ids derive from their names, so a tenant's
    simulated agents are the same rows, in the same order, on every machine (round robin and
    reports do not depend on random ids)."""
    types = list(AgentType.objects.order_by("slug"))
    agents = list(Agent.objects.filter(simulated=True).order_by("name", "id"))
    names = {agent.name for agent in agents}
    index = 0
    while len(agents) < count:
        name = f"sim agent {index:04d}"
        if name not in names:
            agents.append(
                agent_create(
                    name=name,
                    agent_type=types[index % len(types)],
                    status="OFFLINE",
                    simulated=True,
                    agent_id=uuid.uuid5(SIMULATED_AGENT_IDS, name),
                    actor=SIMULATOR,
                )
            )
        index += 1
    return sorted(agents, key=lambda agent: (agent.name, str(agent.id)))[:count]


def retire_other_agents(keep: list[Agent]) -> None:
    """Every simulated agent that is not one of ``keep`` goes OFFLINE (a busy one's call is ended
    first: no run is going on, so it is a leftover). A run has exactly its own agents: those of an
    earlier, larger run would otherwise stay in the line and answer calls, so the report would
    depend on what ran before (and Erlang C would be judged against the wrong number of agents)."""
    kept = {agent.id for agent in keep}
    for agent in Agent.objects.filter(simulated=True).exclude(status=Agent.Status.OFFLINE).order_by("name", "id"):
        if agent.id not in kept:
            agent_set_status(agent=agent, status=Agent.Status.OFFLINE, force=True, actor=SIMULATOR)


def ensure_agents_available(agents: list[Agent]) -> None:
    """Live runs: every agent AVAILABLE (a busy one keeps its call)."""
    for agent in agents:
        if agent.status not in (Agent.Status.BUSY, Agent.Status.AVAILABLE):
            agent_set_status(agent=agent, status=Agent.Status.AVAILABLE, actor=SIMULATOR)


def _workers_answer() -> bool:
    from callcenter.health import heartbeat_checks

    # No broker or no worker: either way nobody will run the tasks.
    return bool(heartbeat_checks()["workers"]["status"] == "up")


def run_simulation(options: SimulationOptions, progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Drive one run in the current tenant schema and return its report. Refused (409
    ``simulation_running``) while another run of the tenant is going on."""
    if simulation_runs_active().exists():
        raise ApplicationError(
            code="simulation_running",
            message="A simulation is already running in this tenant; stop it or wait for it to finish.",
            status=409,
        )
    overrides = options.overrides(routing_config(force=True).settings.max_queue_length)
    with routing_overrides(overrides):
        return _run(options, overrides, progress)


def _run(options: SimulationOptions, overrides: dict[str, Any], progress: Callable[[str], None] | None) -> RunOutcome:
    notes: list[str] = []
    settings = routing_config(force=True).settings
    agents = ensure_agents(options.agents)
    retire_other_agents(keep=agents)
    if options.live:
        ensure_agents_available(agents)  # a virtual run logs its agents in at its own instants
    mean_duration = truncated_mean(settings)
    rate = options.rate or 0.85 * options.agents / mean_duration
    inline = False
    if options.live:
        inline = options.inline_completion if options.inline_completion is not None else not _workers_answer()
        if inline and options.inline_completion is None:
            notes.append("No Celery worker answered: the simulator completed the calls itself, on time.")
    total = options.calls
    if options.live and options.stress_minutes:
        total = max(total, int(rate * options.time_scale * options.stress_minutes * 60))
    run = SimulationRun.objects.create(
        seed=options.seed,
        strategy=settings.strategy,
        rate_per_second=rate,
        time_scale=options.time_scale if options.live else 1.0,
        calls_planned=total,
        agents=len(agents),
        source=options.source,
        clock=SimulationRun.Clock.LIVE if options.live else SimulationRun.Clock.VIRTUAL,
        kind=options.kind,
        settings_overrides=overrides,
        complete_with_celery=options.live and not inline,
    )
    clock_facts: dict[str, Any]
    wall_seconds: float | None = None
    try:
        if options.live:
            clock_facts = _run_live(run, total, rate, inline, notes, progress)
        else:
            result = run_virtual(
                run=run,
                agents=agents,
                total_calls=total,
                rate=rate,
                no_wait_limit=options.no_wait_limit,
                heartbeat=lambda sent, done: _heartbeat(run, sent, total, progress, done=done),
            )
            clock_facts = {"simulated_seconds": round(result.simulated_seconds, 3)}
            wall_seconds = round(result.wall_seconds, 3)
            if result.stopped:
                notes.append(f"Stopped after {result.arrivals_sent} of {total} arrivals.")
    except BaseException:
        SimulationRun.objects.filter(id=run.id).update(status=SimulationRun.Status.STOPPED, finished_at=timezone.now())
        raise
    run.refresh_from_db()
    run.finished_at = timezone.now()
    run.status = (
        SimulationRun.Status.STOPPED if run.status == SimulationRun.Status.STOPPED else SimulationRun.Status.FINISHED
    )
    report = build_report(run=run, agents=len(agents), notes=notes, live_facts=clock_facts if options.live else None)
    report["clock_facts"] = clock_facts
    report["wall_clock"] = {
        "run_id": str(run.id),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
        "wall_seconds": clock_facts.pop("wall_seconds", wall_seconds),
    }
    run.report = report
    run.save(update_fields=["finished_at", "status", "report", "updated_at"])
    return RunOutcome(run=run, report=report, notes=notes)


def _heartbeat(
    run: SimulationRun, sent: int, total: int, progress: Callable[[str], None] | None, done: int | None = None
) -> bool:
    """Once a second: show progress, touch the run (so it counts as going on), and tell the driver
    whether to go on (False once someone set the run STOPPED, e.g. from the dashboard)."""
    if progress:
        progress(_progress_line(run, sent, total) if done is None else _bar(done, sent, total))
    SimulationRun.objects.filter(id=run.id).update(updated_at=timezone.now())
    return (
        SimulationRun.objects.filter(id=run.id).values_list("status", flat=True).first() == SimulationRun.Status.RUNNING
    )


def _run_live(
    run: SimulationRun,
    total: int,
    rate: float,
    inline: bool,
    notes: list[str],
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Real time: arrivals on a wall-clock schedule, calls completed by Celery (or inline)."""
    config = routing_config(force=True)
    settings = config.settings
    rng = np.random.default_rng(run.seed)
    call_types = sorted(config.call_types_by_slug.values(), key=lambda c: c.slug)
    weights = np.array([c.mix_weight for c in call_types], dtype=float)
    weights = weights / weights.sum()
    gaps = rng.exponential(1.0 / rate, size=total) / run.time_scale
    kinds = rng.choice(len(call_types), size=total, p=weights)
    start = time.monotonic()
    arrival = start
    last_beat = start
    behind: list[float] = []
    sent = 0
    for index in range(total):
        arrival += float(gaps[index])
        while True:
            now = time.monotonic()
            if inline:
                _complete_due(run)
            if now >= arrival:
                break
            time.sleep(min(arrival - now, 0.01))
        behind.append((time.monotonic() - arrival) * run.time_scale)
        call_create(
            phone_number=f"+3469{index:08d}",
            call_type=call_types[int(kinds[index])],
            actor=SIMULATOR,
            simulation_run=run,
            simulation_sequence=index,
        )
        sent += 1
        if time.monotonic() - last_beat > 1:
            last_beat = time.monotonic()
            if not _heartbeat(run, sent, total, progress):
                notes.append(f"Stopped after {sent} of {total} arrivals.")
                break
    deadline = time.monotonic() + settings.duration_max_seconds / run.time_scale + 120
    while Call.objects.filter(simulation_run=run, status__in=Call.OPEN).exists():
        if time.monotonic() > deadline:
            notes.append("Timed out waiting for calls to finish.")
            break
        if inline:
            _complete_due(run)
        time.sleep(0.02)
        if time.monotonic() - last_beat > 1:
            last_beat = time.monotonic()
            _heartbeat(run, sent, total, progress)
        close_old_connections()
    array = np.asarray(behind or [0.0])
    return {
        "wall_seconds": round(time.monotonic() - start, 3),
        "arrivals_behind_schedule_simulated_seconds": {
            "mean": round(float(array.mean()), 3),
            "max": round(float(array.max()), 3),
        },
    }


def _complete_due(run: SimulationRun) -> None:
    for call_id in Call.objects.filter(
        simulation_run=run, status=Call.Status.ASSIGNED, expected_end_at__lte=timezone.now()
    ).values_list("id", flat=True):
        simulated_call_finish(call_id=call_id)


def _bar(done: int, sent: int, total: int) -> str:
    width = 30
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} done, {sent} arrived"


def _progress_line(run: SimulationRun, sent: int, total: int) -> str:
    counts = Counter(Call.objects.filter(simulation_run=run).values_list("status", flat=True))
    done = sum(counts[s] for s in Call.TERMINAL)
    width = 30
    filled = int(width * done / max(total, 1))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} done, {sent} arrived, "
        f"{counts['ASSIGNED']} talking, {counts['QUEUED']} waiting"
    )


def build_report(
    *, run: SimulationRun, agents: int, notes: list[str], live_facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The statistical report of a run (SPEC §6, docs/simulation.md). Every statistical check gives a
    p-value; Holm's procedure over them decides which fail, so the report's family-wise false-alarm
    rate is 5 %. Figures that depend on the wall clock are under ``checks.latency`` and, for live
    runs, ``live``; everything else is a function of the seed and the configuration. On the
    simulated clock the latency is information only (status ``info``): the verdict of a virtual run
    never depends on the machine's load."""
    with routing_overrides(run.settings_overrides):
        config = routing_config(force=True)
    settings = config.settings
    calls = list(
        Call.objects.filter(simulation_run=run)
        .select_related("call_type", "agent__agent_type")
        .order_by("simulation_sequence", "created_at", "id")
    )
    scale = run.time_scale
    checks: dict[str, Any] = {}
    # Wall-clock latency measures the machine: on the simulated clock it is information only, so the
    # verdict on the routing never depends on the machine's load; a live run (a load test) checks it.
    checks["latency"] = stats.latency_check(
        [c.assignment_time_ms for c in calls if c.assignment_time_ms is not None],
        settings.max_assignment_time_ms,
        decides=run.clock == SimulationRun.Clock.LIVE,
    )
    weights = {c.slug: c.mix_weight for c in config.call_types_by_id.values()}
    checks["call_type_mix"] = stats.mix_check(Counter(c.call_type.slug for c in calls), weights, seed=run.seed)
    configured = {
        (config.agent_types_by_id[a].slug, config.call_types_by_id[c].slug): p for (a, c), p in config.p_ok.items()
    }
    cells: dict[tuple[str, str], list[int]] = {cell: [0, 0] for cell in configured}
    for c in calls:
        if c.status == Call.Status.COMPLETED and c.outcome and c.agent is not None:
            cell = (c.agent.agent_type.slug, c.call_type.slug)
            cells.setdefault(cell, [0, 0])
            cells[cell][1] += 1
            cells[cell][0] += 1 if c.outcome == Call.Outcome.OK else 0
    checks["conversion"] = stats.conversion_check(
        {k: (v[0], v[1]) for k, v in cells.items() if k in configured}, configured, seed=run.seed
    )
    model = (
        settings.duration_model,
        settings.duration_mean_seconds,
        settings.duration_std_seconds,
        settings.duration_min_seconds,
        settings.duration_max_seconds,
    )
    checks["durations"] = stats.duration_check(
        [c.planned_duration_seconds for c in calls if c.planned_duration_seconds is not None], *model
    )
    live: dict[str, Any] | None = None
    if run.clock == SimulationRun.Clock.LIVE:
        live, checks["realised_durations"] = _live_figures(calls, model, scale, live_facts or {})
    checks["invariants"] = invariants_check(run)
    erlang_applies = (
        settings.duration_model == "exponential"
        and settings.max_wait_seconds >= NO_WAIT_LIMIT
        and settings.wrap_up_seconds == 0
    )
    if erlang_applies:
        checks.update(_erlang_checks(calls, run, agents, settings))
    ok = stats.verdict(checks)
    completed = [c for c in calls if c.status == Call.Status.COMPLETED and c.outcome]
    ok_calls = sum(1 for c in completed if c.outcome == Call.Outcome.OK)
    low, high = stats.proportion_interval(ok_calls, len(completed))
    report: dict[str, Any] = {
        "seed": run.seed,
        "clock": run.clock,
        "strategy": settings.strategy,
        "agents": agents,
        "calls": len(calls),
        "rate_per_simulated_second": round(run.rate_per_second, 6),
        "time_scale": run.time_scale,
        "duration_model": settings.duration_model,
        "settings_overrides": run.settings_overrides,
        "statuses": dict(sorted(Counter(str(c.status) for c in calls).items())),
        "conversion_rate": round(ok_calls / len(completed), 4) if completed else None,
        "conversion_interval": [round(low, 4), round(high, 4)],
        "completed_by_sweep": sum(1 for c in calls if c.end_reason == "completed_by_sweep"),
        "checks": checks,
        "family_wise_alpha": stats.ALPHA,
        "ok": ok,
        "notes": notes,
    }
    if live is not None:
        report["live"] = live
        if live["unreliable"]:
            notes.append("UNRELIABLE: " + "; ".join(live["unreliable_because"]))
    return report


def _live_figures(
    calls: list[Call], model: tuple[str, float, float, float, float], scale: float, facts: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Completion lag and realised talk time of a live run, and whether they make it unreliable:
    lag beyond 1 % of the mean handle time, or arrivals behind schedule by as much."""
    ended = [c for c in calls if c.status == Call.Status.COMPLETED and c.expected_end_at and c.ended_at]
    lags = np.asarray([(c.ended_at - c.expected_end_at).total_seconds() * scale for c in ended] or [0.0])  # type: ignore[operator]
    realised = [c.actual_duration_seconds * scale for c in ended if c.actual_duration_seconds is not None]
    mean_handle = float(stats.truncated_distribution(*model).mean())
    limit = 0.01 * mean_handle
    behind = facts.get("arrivals_behind_schedule_simulated_seconds", {}).get("mean", 0.0)
    reasons = []
    if float(lags.mean()) > limit:
        reasons.append(f"completion lag {lags.mean():.2f} s (simulated) > 1 % of the mean handle time ({limit:.2f} s)")
    if behind > limit:
        reasons.append(f"arrivals {behind:.2f} s (simulated) behind schedule on average > {limit:.2f} s")
    live = {
        "completion_lag_simulated_seconds": {
            "mean": round(float(lags.mean()), 3),
            "p50": round(float(np.percentile(lags, 50)), 3),
            "p99": round(float(np.percentile(lags, 99)), 3),
            "max": round(float(lags.max()), 3),
        },
        "realised_talk_mean_seconds": round(float(np.mean(realised)), 3) if realised else None,
        "unreliable": bool(reasons),
        "unreliable_because": reasons,
        **facts,
    }
    return live, stats.duration_check(realised, *model, what="realised")


def _erlang_checks(calls: list[Call], run: SimulationRun, agents: int, settings: RoutingSettings) -> dict[str, Any]:
    answered = [c for c in calls if c.assigned_at is not None and c.ended_at is not None]
    if not answered:
        return {}
    scale = run.time_scale
    origin = answered[0].created_at
    handle_time = truncated_mean(settings)
    figures: dict[str, Any] = {
        "arrival_times": [(c.created_at - origin).total_seconds() * scale for c in answered],
        "waits": [max(0.0, (c.assigned_at - c.created_at).total_seconds() * scale) for c in answered],  # type: ignore[operator]
        "handle_times": [(c.ended_at - c.assigned_at).total_seconds() * scale for c in answered],  # type: ignore[operator]
    }
    erlang = stats.erlang_check(
        **figures,
        queued=[c.queued_at is not None for c in answered],
        arrival_rate=run.rate_per_second,
        handle_time=handle_time,
        agents=agents,
        sl_seconds=settings.service_level_seconds,
    )
    stationarity = stats.stationarity_check(**figures, agents=agents)
    return {"erlang_c": erlang, "stationarity": stationarity}


def invariants_check(run: SimulationRun) -> dict[str, Any]:
    """No agent held two calls at once (each agent's calls, by the run's own clock, never overlap),
    every call reached one terminal state, Redis and Postgres agree at the end."""
    calls = Call.objects.filter(simulation_run=run)
    open_calls = calls.filter(status__in=Call.OPEN).count()
    unknown = calls.exclude(status__in=Call.Status.values).count()
    overlaps = 0
    by_agent: dict[Any, list[tuple[Any, datetime.datetime | None]]] = {}
    for agent_id, assigned, ended in (
        calls.filter(agent__isnull=False, assigned_at__isnull=False)
        .order_by("assigned_at")
        .values_list("agent_id", "assigned_at", "ended_at")
    ):
        by_agent.setdefault(agent_id, []).append((assigned, ended))
    for spans in by_agent.values():
        for (_, end), (start, _) in pairwise(spans):
            if end is None or end > start:
                overlaps += 1
    drift = engine_drift()
    ok = open_calls == 0 and unknown == 0 and overlaps == 0 and not drift
    return {
        "ok": ok,
        "status": "pass" if ok else "fail",
        "statistical": False,
        "test": "no agent held two calls, every call terminal, Redis equals Postgres",
        "calls_not_terminal": open_calls,
        "calls_in_unknown_state": unknown,
        "agents_holding_two_calls": overlaps,
        "redis_equals_postgres": not drift,
        "drift": drift.summary() if drift else "",
    }


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")


def print_report(report: dict[str, Any], write: Callable[[str], Any] = _write_line) -> None:
    write(f"Simulation {report['wall_clock']['run_id']} ({report['clock']} clock, seed {report['seed']}, "
          f"strategy {report['strategy']}, {report['agents']} agents, {report['calls']} calls)")  # fmt: skip
    write(f"  statuses: {report['statuses']}; conversion {report['conversion_rate']} {report['conversion_interval']}")
    hidden = ("ok", "status", "cells", "figures", "observed", "expected", "statistical", "test")
    for name, check in report["checks"].items():
        mark = {"pass": "PASS", "fail": "FAIL"}.get(check.get("status", ""), check.get("status", "").upper())
        info = check.get("status") == "info"
        detail = {k: v for k, v in check.items() if k not in hidden and not (info and k == "note")}
        write(f"  [{mark}] {name}{' (information, not part of the verdict)' if info else ''}: "
              f"{check.get('test', '')} {detail}")  # fmt: skip
        if info and check.get("note"):
            write(f"         {check['note']}")
        if name == "conversion":
            for cell, figures in check["cells"].items():
                if figures["calls"]:
                    flag = "  <-- off" if figures["status"] == "off" else ""
                    write(f"         {cell}: configured {figures['configured']}, observed {figures['observed']} "
                          f"of {figures['calls']}, p {figures['p_value']} (Holm {figures['p_holm']})"
                          f"{flag}")  # fmt: skip
        if name == "erlang_c" and "figures" in check:
            for figure, values in check["figures"].items():
                write(f"         {figure}: {values}")
    if "live" in report:
        write(f"  live: {report['live']}")
    for note in report.get("notes", []):
        write(f"  note: {note}")
    write(f"  family-wise false-alarm rate of the verdict: {report['family_wise_alpha']:.0%} (Holm over the checks)")
    write("RESULT: " + ("all checks passed" if report["ok"] else "some checks FAILED"))
