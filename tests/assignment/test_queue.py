"""Waiting calls: priority then age, saturation, abandonment by the sweep, cancel, and a freed
agent taking the next waiting call. Plus the sweep's drift repair."""

from __future__ import annotations

import datetime

from django.utils import timezone

from agents.models import Agent
from agents.services import agent_set_status
from assignment import engine
from assignment.keys import TenantKeys
from assignment.models import RoutingSettings
from assignment.services.recovery import engine_drift
from assignment.services.sweep import sweep_tenant
from calls.models import Call
from calls.services import call_cancel, call_complete
from routing.services import routing_config_forget
from tests.factories import TEST_ACTOR, make_agent, make_call


def _settings(**values: object) -> None:
    RoutingSettings.objects.update(**values)
    routing_config_forget()


class QueueTests:
    def test_a_freed_agent_takes_the_highest_priority_then_oldest_call(self, in_alpha) -> None:
        agent = make_agent(status=Agent.Status.OFFLINE)
        low_old = make_call(priority=1)
        high_new = make_call(priority=7)
        low_new = make_call(priority=1)
        high_newer = make_call(priority=7)
        order = []
        agent_set_status(agent=agent, status=Agent.Status.AVAILABLE, actor=TEST_ACTOR)
        for _ in range(4):
            active = Call.objects.select_related("agent").get(agent=agent, status=Call.Status.ASSIGNED)
            order.append(active.id)
            call_complete(call_id=active.id, outcome="OK", actor=TEST_ACTOR)
        assert order == [high_new.id, high_newer.id, low_old.id, low_new.id]
        assert Agent.objects.get(id=agent.id).status == Agent.Status.AVAILABLE

    def test_it_saturates_when_the_queue_is_full(self, in_alpha) -> None:
        _settings(max_queue_length=2)
        assert [make_call().status for _ in range(3)] == ["QUEUED", "QUEUED", "SATURATED"]
        saturated = Call.objects.get(status=Call.Status.SATURATED)
        assert saturated.ended_at is not None and saturated.end_reason == "saturated"
        assert len(engine.snapshot(schema_name=in_alpha.schema_name).queue) == 2

    def test_zero_queue_length_rejects_at_once_when_nobody_is_free(self, in_alpha) -> None:
        _settings(max_queue_length=0)
        assert make_call().status == Call.Status.SATURATED
        make_agent()
        assert make_call().status == Call.Status.ASSIGNED

    def test_the_sweep_abandons_calls_waiting_too_long(self, in_alpha) -> None:
        _settings(max_wait_seconds=60)
        old = make_call()
        fresh = make_call()
        Call.objects.filter(id=old.id).update(queued_at=timezone.now() - datetime.timedelta(seconds=61))
        report = sweep_tenant()
        assert report.abandoned == 1
        assert Call.objects.get(id=old.id).status == Call.Status.ABANDONED
        assert Call.objects.get(id=fresh.id).status == Call.Status.QUEUED
        assert engine.snapshot(schema_name=in_alpha.schema_name).queue == [str(fresh.id)]
        # An agent arriving now gets the fresh call, never the abandoned one.
        agent = make_agent()
        assert Call.objects.get(id=fresh.id).agent_id == agent.id

    def test_a_cancelled_waiting_call_is_never_handed_out(self, in_alpha) -> None:
        waiting = make_call()
        cancelled = call_cancel(call=waiting, actor=TEST_ACTOR)
        assert cancelled.status == Call.Status.CANCELLED and cancelled.end_reason == "cancelled"
        agent = make_agent()
        assert Agent.objects.get(id=agent.id).status == Agent.Status.AVAILABLE
        assert not engine_drift()

    def test_hanging_up_an_active_call_frees_its_agent_for_the_next_one(self, in_alpha) -> None:
        agent = make_agent()
        active = make_call()
        waiting = make_call()
        hung_up = call_cancel(call=active, actor=TEST_ACTOR)
        assert hung_up.status == Call.Status.CANCELLED and hung_up.end_reason == "hung_up"
        assert Call.objects.get(id=waiting.id).agent_id == agent.id
        assert not engine_drift()


class SweepRepairTests:
    def test_persistent_drift_is_repaired_on_the_second_sweep(self, in_alpha) -> None:
        make_agent(name="a")
        make_agent(name="b")
        keys = TenantKeys(in_alpha.schema_name)
        engine.client().delete(keys.idle, keys.idle_lex)  # Redis lost part of its state
        assert engine_drift()
        first = sweep_tenant()
        assert not first.rebuilt  # one sighting may be a change in flight
        second = sweep_tenant()
        assert second.rebuilt
        assert not engine_drift()
        assert make_call().status == Call.Status.ASSIGNED

    def test_an_idle_agent_and_a_waiting_call_are_paired(self, in_alpha) -> None:
        waiting = make_call()
        agent = make_agent(status=Agent.Status.OFFLINE)
        # Simulate an undone claim: Redis shows the agent idle while the call waits.
        Agent.objects.filter(id=agent.id).update(status=Agent.Status.AVAILABLE, idle_since=timezone.now())
        keys = TenantKeys(in_alpha.schema_name)
        engine.client().zadd(keys.idle, {str(agent.id): 1})
        engine.client().hset(keys.agent_status, str(agent.id), "AVAILABLE")
        report = sweep_tenant(check_drift=False)
        assert report.paired == 1
        assert Call.objects.get(id=waiting.id).agent_id == agent.id


class SimulatedWaitLimitTests:
    def test_a_simulated_calls_wait_limit_runs_in_simulated_time(self, in_alpha) -> None:
        from simulation.models import SimulationRun

        _settings(max_wait_seconds=300)
        run = SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=100)
        real = make_call()
        simulated = make_call(simulation_run=run, simulation_sequence=0)
        four_seconds_ago = timezone.now() - datetime.timedelta(seconds=4)
        Call.objects.filter(id__in=[real.id, simulated.id]).update(queued_at=four_seconds_ago)
        # 4 real seconds are 400 simulated seconds at time scale 100: past the 300 s limit.
        assert sweep_tenant(check_drift=False).abandoned == 1
        assert Call.objects.get(id=simulated.id).status == Call.Status.ABANDONED
        assert Call.objects.get(id=real.id).status == Call.Status.QUEUED


class SweepRobustnessTests:
    def test_a_failing_item_does_not_stop_the_rest_of_the_sweep(self, in_alpha) -> None:
        from unittest import mock

        _settings(max_wait_seconds=60)
        old = make_call()
        Call.objects.filter(id=old.id).update(queued_at=timezone.now() - datetime.timedelta(seconds=61))
        with mock.patch("calls.services.call_abandon", side_effect=RuntimeError("stuck")):
            report = sweep_tenant()
        assert report.abandoned == 0 and any("abandon: stuck" in note for note in report.notes)
        # The next sweep (the item no longer fails) still does its work.
        assert sweep_tenant().abandoned == 1

    def test_lasting_drift_is_repaired_while_other_differences_come_and_go(self, in_alpha) -> None:
        make_agent(name="lasting")
        keys = TenantKeys(in_alpha.schema_name)
        engine.client().delete(keys.idle, keys.idle_lex)  # a lasting difference
        first = sweep_tenant()
        assert not first.rebuilt
        make_agent(name="new in flight", status=Agent.Status.OFFLINE)  # the set of differences changes...
        engine.client().hdel(keys.agent_status, str(Agent.objects.get(name="new in flight").id))
        second = sweep_tenant()
        assert second.rebuilt  # ...but the lasting one is seen twice: rebuilt
        assert not engine_drift()
