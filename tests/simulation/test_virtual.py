"""The simulated clock: services take "now" from it, a virtual run has no lag (every completion,
wrap-up end and abandonment happens at its simulated instant), its settings never touch the tenant's,
one run at a time goes on in a tenant, a run has exactly its own agents, and what a simulated call
costs in round trips to Postgres and Redis."""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils import timezone

from agents.models import Agent
from assignment.models import RoutingSettings
from callcenter import clock
from callcenter.errors import ApplicationError
from calls.models import Call
from routing.services import routing_config_forget
from simulation.models import SimulationRun
from simulation.runner import SimulationOptions, run_simulation

MS = datetime.timedelta(milliseconds=1)


class ClockTests:
    def test_a_virtual_clock_is_seen_only_in_its_own_context(self) -> None:
        start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        virtual = clock.VirtualClock(start)
        seen_elsewhere: list[datetime.datetime] = []
        with clock.use_clock(virtual):
            virtual.advance_to(start + datetime.timedelta(hours=2))
            assert clock.now() == start + datetime.timedelta(hours=2) and clock.is_virtual()
            thread = threading.Thread(target=lambda: seen_elsewhere.append(clock.now()))
            thread.start()
            thread.join()
        assert abs(seen_elsewhere[0] - timezone.now()) < datetime.timedelta(minutes=1)
        assert not clock.is_virtual() and abs(clock.now() - timezone.now()) < datetime.timedelta(seconds=5)

    def test_a_clock_never_goes_back(self) -> None:
        start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        virtual = clock.VirtualClock(start)
        virtual.advance_to(start + MS)
        with pytest.raises(ValueError):
            virtual.advance_to(start)


class VirtualRunTests:
    def test_everything_happens_at_its_simulated_instant(self, in_alpha) -> None:
        RoutingSettings.objects.update(wrap_up_seconds=30, max_wait_seconds=60)
        routing_config_forget()
        # Four agents, far more calls than they can take: waits, abandonments and wrap-ups.
        outcome = run_simulation(SimulationOptions(calls=150, agents=4, rate=0.05, seed=11))
        calls = list(Call.objects.filter(simulation_run=outcome.run))
        abandoned = [c for c in calls if c.status == Call.Status.ABANDONED]
        completed = [c for c in calls if c.status == Call.Status.COMPLETED]
        assert abandoned and completed and len(abandoned) + len(completed) == 150
        for call in abandoned:  # hung up exactly at the wait limit
            assert abs(call.ended_at - call.queued_at - datetime.timedelta(seconds=60)) <= MS
        for call in completed:  # talked exactly its drawn duration: no lag
            assert abs(call.actual_duration_seconds - call.planned_duration_seconds) <= 0.002
            assert abs(call.ended_at - call.expected_end_at) <= 2 * MS
        for agent in Agent.objects.filter(simulated=True):
            last_end = max(c.ended_at for c in completed if c.agent_id == agent.id and c.ended_at is not None)
            # Idle again exactly when its last wrap-up ended.
            assert agent.status == Agent.Status.AVAILABLE
            assert abs(agent.idle_since - last_end - datetime.timedelta(seconds=30)) <= 2 * MS
        assert outcome.report["checks"]["invariants"]["ok"]
        assert outcome.report["clock_facts"]["simulated_seconds"] > 150 / 0.05 * 0.8

    def test_a_runs_settings_never_change_the_tenants(self, in_alpha) -> None:
        before = RoutingSettings.objects.values().get()
        options = SimulationOptions(
            calls=40, agents=4, seed=2, strategy="best_conversion", duration_model="exponential", no_wait_limit=True
        )
        outcome = run_simulation(options)
        assert RoutingSettings.objects.values().get() == before
        assert outcome.run.settings_overrides["strategy"] == "best_conversion"
        assert outcome.report["strategy"] == "best_conversion" and outcome.report["duration_model"] == "exponential"
        assert "erlang_c" in outcome.report["checks"]  # exponential, no wait limit: Erlang C applies

    def test_one_run_at_a_time_per_tenant(self, in_alpha) -> None:
        SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=1)  # going on
        with pytest.raises(ApplicationError) as raised:
            run_simulation(SimulationOptions(calls=5, agents=2, seed=1))
        assert raised.value.code == "simulation_running" and raised.value.status == 409
        # A run not heard from for a minute (its process died) no longer blocks.
        SimulationRun.objects.update(updated_at=timezone.now() - datetime.timedelta(minutes=5))
        assert run_simulation(SimulationOptions(calls=5, agents=2, seed=1)).report["calls"] == 5


def _report_without_wall_clock(report: dict[str, Any]) -> dict[str, Any]:
    report = dict(report, checks=dict(report["checks"]))
    report.pop("wall_clock")
    report["checks"].pop("latency")
    return report


class VirtualRunAgentsTests:
    def test_a_run_has_exactly_its_own_agents_whatever_ran_before(self, in_alpha) -> None:
        first = run_simulation(SimulationOptions(calls=60, agents=4, seed=5)).report
        # A larger run leaves more simulated agents logged in...
        run_simulation(SimulationOptions(calls=30, agents=8, seed=6))
        # ...but the next run of four is the first one again: the others are out of the line.
        again = run_simulation(SimulationOptions(calls=60, agents=4, seed=5))
        answered_by = set(Call.objects.filter(simulation_run=again.run).values_list("agent__name", flat=True))
        assert answered_by == {f"sim agent {i:04d}" for i in range(4)}
        offline = Agent.objects.filter(simulated=True, status=Agent.Status.OFFLINE)
        assert set(offline.values_list("name", flat=True)) == {f"sim agent {i:04d}" for i in range(4, 8)}
        assert _report_without_wall_clock(again.report) == _report_without_wall_clock(first)


class _RoundTrips:
    """Counts SQL statements (every ``cursor.execute``) and Redis round trips (a command or a script
    by its name, a whole pipeline as PIPELINE) made in this thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: Counter[str] = Counter()
        self.redis: Counter[str] = Counter()
        command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

        def counted_command(client: redis.Redis, *args: Any, **options: Any) -> Any:
            self.redis[str(args[0]).upper()] += 1
            return command(client, *args, **options)

        def counted_pipeline(pipe: redis.client.Pipeline, *args: Any, **options: Any) -> Any:
            self.redis["PIPELINE"] += 1
            return pipeline(pipe, *args, **options)

        monkeypatch.setattr(redis.Redis, "execute_command", counted_command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", counted_pipeline)

    def sql(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements[" ".join(sql.split()[:3])] += 1
        return execute(sql, params, many, context)


class VirtualRunCostTests:
    def test_a_simulated_call_costs_twelve_statements_and_three_redis_round_trips(self, in_alpha, monkeypatch) -> None:
        """Through the real services: the claim (the call's and the tenant's engine lock in one
        statement, agent, assignment, call, its events; one Lua script, one metrics pipeline), the
        completion (the engine lock, call and agent locked, call, assignment and agent written, its
        events; one Lua script), and
        for a call that waited its hand-over to the freed agent. The driver itself asks Postgres
        nothing per call: the services hand it each completion to schedule (it used to read the call
        before completing it and the agent after: two statements more)."""
        options = SimulationOptions(calls=400, agents=10, seed=3, duration_model="exponential", no_wait_limit=True)
        run_simulation(dataclasses.replace(options, calls=10))  # the agents exist from here on
        trips = _RoundTrips(monkeypatch)
        with connection.execute_wrapper(trips.sql):
            outcome = run_simulation(options)
        calls = outcome.report["calls"]
        waited = Call.objects.filter(simulation_run=outcome.run, queued_at__isnull=False).count()
        assert outcome.report["statuses"] == {"COMPLETED": 400} and 0.2 < waited / calls < 0.6  # rho = 0.85
        # 12 statements per call (10 before domain events: the claim and the completion each write
        # their events in one INSERT), 4 more per call that waited (its claim writes 2 fewer, its hand-over 6),
        # and the run's own bookkeeping (agents logged in, the report): under 1 per call here. The
        # heartbeat's statements (about one a second of wall time) are left out: they follow the clock.
        statements = sum(n for sql, n in trips.statements.items() if "simulation_simulationrun" not in sql)
        assert statements / calls <= 12 + 4 * waited / calls + 1, trips.statements.most_common()
        # One claim and one release script, one metrics pipeline per call (+ the agents' logins and the
        # configuration cache, read about once a second, left out).
        scripts = trips.redis["EVALSHA"] + trips.redis["EVAL"] + trips.redis["PIPELINE"]
        assert scripts / calls <= 3.1, trips.redis.most_common()
