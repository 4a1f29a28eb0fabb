"""Staffing: the simulated clock run for each agent count, beside Erlang C and Erlang A.

For every count the same arrivals (same seed, same rate) are played against that many simulated
agents with the tenant's settings; the report gives service level, average speed of answer,
occupancy and abandonment, the Erlang C prediction (and Erlang A's when callers hang up after
``max_wait_seconds``), and the smallest staff whose simulated service level meets the target.
The result is stored as a ``SimulationRun`` of kind ``staffing`` (``report["staffing"]``) for the
dashboard, and can be drawn (``staffing_plot``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from django.utils import timezone

from calls.models import Call
from routing.services import routing_config, routing_overrides
from simulation import stats
from simulation.models import SimulationRun
from simulation.runner import NO_WAIT_LIMIT, SimulationOptions, run_simulation, truncated_mean

DEFAULT_OCCUPANCY = 0.85


def staffing_sweep(
    *,
    options: SimulationOptions,
    agent_counts: Iterable[int],
    target: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the virtual simulator once per agent count and compare with Erlang C/A. ``target`` is the
    service level to meet (the share answered within ``service_level_seconds``); by default the
    tenant's ``service_level_target``."""
    counts = list(agent_counts)
    with routing_overrides(options.overrides(routing_config(force=True).settings.max_queue_length)):
        settings = routing_config(force=True).settings
    if target is None:
        target = settings.service_level_target
    handle_time = truncated_mean(settings)
    # One arrival rate for every count: by default the midpoint count would be 85 % busy.
    rate = options.rate or DEFAULT_OCCUPANCY * (counts[0] + counts[-1]) / 2 / handle_time
    wait_limit = None if settings.max_wait_seconds >= NO_WAIT_LIMIT else settings.max_wait_seconds
    sl_seconds = settings.service_level_seconds
    rows = []
    for agents in counts:
        if progress:
            progress(f"staffing: {agents} agents...")
        outcome = run_simulation(dataclasses.replace(options, agents=agents, rate=rate, live=False))
        rows.append(_row(outcome.run, agents, rate, handle_time, sl_seconds, wait_limit, outcome.report["ok"]))
    meeting = [row["agents"] for row in rows if row["simulated"]["service_level"] >= target]
    erlang_meeting = [row["agents"] for row in rows if row["erlang_c"]["service_level"] >= target]
    result = {
        "kind": "staffing",
        "seed": options.seed,
        "calls_per_count": options.calls,
        "arrival_rate_per_second": round(rate, 6),
        "handle_time_seconds": round(handle_time, 3),
        "offered_erlangs": round(rate * handle_time, 3),
        "service_level_seconds": sl_seconds,
        "service_level_target": target,
        "wait_limit_seconds": wait_limit,
        "duration_model": settings.duration_model,
        "strategy": settings.strategy,
        "rows": rows,
        "smallest_staff_meeting_target": min(meeting) if meeting else None,
        "erlang_c_smallest_staff": min(erlang_meeting) if erlang_meeting else None,
    }
    run = SimulationRun.objects.create(
        seed=options.seed,
        strategy=settings.strategy,
        rate_per_second=rate,
        time_scale=1.0,
        calls_planned=options.calls * len(counts),
        agents=counts[-1],
        source=options.source,
        clock=SimulationRun.Clock.VIRTUAL,
        kind=SimulationRun.Kind.STAFFING,
        status=SimulationRun.Status.FINISHED,
        finished_at=timezone.now(),
        report={"staffing": result},
    )
    result["run_id"] = str(run.id)
    return result


def _row(
    run: SimulationRun,
    agents: int,
    rate: float,
    handle_time: float,
    sl_seconds: int,
    wait_limit: int | None,
    checks_ok: bool,
) -> dict[str, Any]:
    calls = list(
        Call.objects.filter(simulation_run=run).values_list(
            "status", "created_at", "assigned_at", "ended_at", "actual_duration_seconds"
        )
    )
    arrivals = len(calls)
    answered = [(c[2] - c[1]).total_seconds() for c in calls if c[2] is not None]
    abandoned = sum(1 for c in calls if c[0] == Call.Status.ABANDONED)
    talk = sum(c[4] or 0.0 for c in calls if c[2] is not None)
    span = (max(c[3] or c[1] for c in calls) - min(c[1] for c in calls)).total_seconds() if calls else 0.0
    simulated = {
        "service_level": round(sum(1 for w in answered if w <= sl_seconds) / arrivals, 4) if arrivals else None,
        "asa_seconds": round(float(np.mean(answered)), 3) if answered else None,
        "occupancy": round(talk / (agents * span), 4) if span else None,
        "abandonment": round(abandoned / arrivals, 4) if arrivals else None,
        "p_wait": round(sum(1 for w in answered if w > 0) / len(answered), 4) if answered else None,
    }
    erlang = stats.erlang_c(rate, handle_time, agents)
    row: dict[str, Any] = {
        "agents": agents,
        "run_id": str(run.id),
        "checks_ok": checks_ok,
        "simulated": simulated,
        "erlang_c": {
            "service_level": round(stats.erlang_service_level(rate, handle_time, agents, sl_seconds), 4),
            "asa_seconds": round(erlang["asa"], 3) if erlang["asa"] != float("inf") else None,
            "occupancy": round(min(1.0, erlang["occupancy"]), 4),
            "p_wait": round(erlang["p_wait"], 4),
        },
    }
    if wait_limit is not None:
        row["erlang_a"] = {
            k: round(v, 4) for k, v in stats.erlang_a(rate, handle_time, agents, wait_limit, sl_seconds).items()
        }
    return row


def print_staffing(result: dict[str, Any], write: Callable[[str], Any]) -> None:
    write(
        f"Staffing (seed {result['seed']}, {result['calls_per_count']} calls per count, "
        f"{result['arrival_rate_per_second'] * 3600:.1f} calls/hour, handle time {result['handle_time_seconds']} s, "
        f"{result['offered_erlangs']} Erlangs offered, target {result['service_level_target']:.0%} "
        f"answered within {result['service_level_seconds']} s)"
    )
    header = "  agents  SL sim  SL ErlC  ASA sim  ASA ErlC  occ sim  occ ErlC  abandon"
    if result["wait_limit_seconds"] is not None:
        header += "  SL ErlA  aband ErlA"
    write(header)
    for row in result["rows"]:
        sim, erl = row["simulated"], row["erlang_c"]
        line = (
            f"  {row['agents']:6d}  {_f(sim['service_level'])}  {_f(erl['service_level'])}"
            f"   {_f(sim['asa_seconds'], 8)}  {_f(erl['asa_seconds'], 8)}"
            f"  {_f(sim['occupancy'])}  {_f(erl['occupancy'])}   {_f(sim['abandonment'])}"
        )
        if "erlang_a" in row:
            line += f"  {_f(row['erlang_a']['service_level'])}  {_f(row['erlang_a']['abandonment'])}"
        write(line)
    write(f"Smallest staff meeting the target: {result['smallest_staff_meeting_target']} (simulated), "
          f"{result['erlang_c_smallest_staff']} (Erlang C)")  # fmt: skip


def _f(value: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.3f}"


def staffing_plot(result: dict[str, Any], path: Path) -> None:
    """Service level and ASA by agent count: simulated against Erlang C (and A), with the target."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = result["rows"]
    agents = [row["agents"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    left.plot(agents, [row["simulated"]["service_level"] for row in rows], "o-", label="simulated")
    left.plot(agents, [row["erlang_c"]["service_level"] for row in rows], "s--", label="Erlang C")
    if result["wait_limit_seconds"] is not None:
        left.plot(agents, [row["erlang_a"]["service_level"] for row in rows], "^:", label="Erlang A")
    left.axhline(result["service_level_target"], color="grey", linewidth=1, label="target")
    if result["smallest_staff_meeting_target"] is not None:
        left.axvline(result["smallest_staff_meeting_target"], color="green", linewidth=1, linestyle="--")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("agents")
    left.set_ylabel(f"answered within {result['service_level_seconds']} s")
    left.set_ylim(0, 1.02)
    left.set_title("Service level")
    left.legend(loc="lower right")
    right.plot(agents, [row["simulated"]["asa_seconds"] for row in rows], "o-", label="simulated ASA")
    right.plot(agents, [row["erlang_c"]["asa_seconds"] for row in rows], "s--", label="Erlang C ASA")
    right.set_xlabel("agents")
    right.set_ylabel("average speed of answer (s)")
    right.set_yscale("symlog", linthresh=1)
    right.set_title("Waiting")
    occupancy = right.twinx()
    occupancy.plot(agents, [row["simulated"]["occupancy"] for row in rows], "d-", color="tab:purple", label="occupancy")
    occupancy.set_ylim(0, 1.02)
    occupancy.set_ylabel("occupancy")
    lines = right.get_legend_handles_labels()
    more = occupancy.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    figure.suptitle(
        f"Staffing: {result['arrival_rate_per_second'] * 3600:.0f} calls/h, "
        f"handle time {result['handle_time_seconds']:.0f} s, {result['calls_per_count']} simulated calls per count; "
        f"smallest staff {result['smallest_staff_meeting_target']}"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
