"""Simulated and real traffic never meet: a real call is never handed to a simulated agent nor a
simulated call to a real one, through claims, releases, rebuilds and the demo; ``cleanup`` removes
only what simulations created and never an agent holding an open call."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import ProtectedError
from django_tenants.utils import schema_context

from agents.models import Agent
from agents.services import agent_set_status
from assignment import engine
from assignment.services.recovery import engine_drift, engine_rebuild
from calls.models import Call, CallType
from calls.services import call_complete, call_create
from simulation.models import SimulationRun
from simulation.services import SIMULATOR
from tests.factories import TEST_ACTOR, make_agent, make_call


def _sim_agent(name: str = "sim agent 0000", status: str = Agent.Status.AVAILABLE) -> Agent:
    return make_agent(name=name, status=status, simulated=True)


def _run() -> SimulationRun:
    return SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=1000)


def _sim_call(run: SimulationRun, sequence: int = 0) -> Call:
    return call_create(
        phone_number=f"+3469700{sequence:05d}",
        call_type=CallType.objects.get(slug="llamada_tipo_1"),
        actor=SIMULATOR,
        simulation_run=run,
        simulation_sequence=sequence,
    ).call


class PoolTests:
    def test_a_real_call_waits_rather_than_take_a_simulated_agent(self, in_alpha) -> None:
        simulated = _sim_agent()
        call = make_call()
        assert call.status == Call.Status.QUEUED and not call.simulated
        real = make_agent(name="Ana")  # logs in: takes the waiting real call
        call.refresh_from_db()
        assert call.status == Call.Status.ASSIGNED and call.agent_id == real.id
        assert Agent.objects.get(id=simulated.id).status == Agent.Status.AVAILABLE

    def test_a_simulated_call_waits_rather_than_take_a_real_agent(self, in_alpha) -> None:
        real = make_agent(name="Ana")
        call = _sim_call(_run())
        assert call.simulated and call.status == Call.Status.QUEUED
        simulated = _sim_agent()
        call.refresh_from_db()
        assert call.status == Call.Status.ASSIGNED and call.agent_id == simulated.id
        assert Agent.objects.get(id=real.id).status == Agent.Status.AVAILABLE

    def test_a_freed_agent_takes_only_a_call_of_its_own_pool(self, in_alpha) -> None:
        real = make_agent(name="Ana")
        simulated = _sim_agent()
        first_real, first_sim = make_call(), _sim_call(_run(), 0)
        assert (first_real.agent_id, first_sim.agent_id) == (real.id, simulated.id)
        waiting_sim = _sim_call(first_sim.simulation_run, 1)  # type: ignore[arg-type]
        waiting_real = make_call()
        assert waiting_sim.status == waiting_real.status == Call.Status.QUEUED
        call_complete(call_id=first_real.id, outcome="OK", actor=TEST_ACTOR)  # the real agent is freed
        waiting_real.refresh_from_db()
        waiting_sim.refresh_from_db()
        assert waiting_real.agent_id == real.id and waiting_sim.status == Call.Status.QUEUED
        call_complete(call_id=first_sim.id, outcome="OK", actor=TEST_ACTOR)
        waiting_sim.refresh_from_db()
        assert waiting_sim.agent_id == simulated.id
        assert not engine_drift()

    def test_a_rebuild_keeps_the_pools_apart(self, in_alpha) -> None:
        simulated = _sim_agent()
        waiting = make_call()
        engine.forget_tenant(schema_name=in_alpha.schema_name)  # as after a Redis restart
        engine_rebuild()
        assert not engine_drift()
        real_snapshot = engine.snapshot(schema_name=in_alpha.schema_name)
        sim_snapshot = engine.snapshot(schema_name=in_alpha.schema_name, simulated=True)
        assert real_snapshot.queue == [str(waiting.id)] and real_snapshot.idle == []
        assert [agent for agent, _ in sim_snapshot.idle] == [str(simulated.id)] and sim_snapshot.queue == []
        assert engine.queue_depth(schema_name=in_alpha.schema_name)[0] == 1

    def test_an_agent_in_the_wrong_pool_is_drift(self, in_alpha) -> None:
        agent = make_agent(name="Ana")
        Agent.objects.filter(id=agent.id).update(simulated=True)  # Redis still has it as real
        drift = engine_drift()
        assert str(agent.id) in drift.agents
        engine_rebuild()
        assert not engine_drift()

    def test_the_api_shows_which_agents_and_calls_are_simulated(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            simulated = _sim_agent()
            call = _sim_call(_run())
        client = alpha.client()
        assert client.get(f"/agents/{simulated.id}").json()["simulated"] is True
        assert client.get(f"/calls/{call.id}").json()["simulated"] is True
        created = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"}).json()
        assert created["simulated"] is False


class ProtectTests:
    def test_an_agent_holding_an_open_call_cannot_be_deleted(self, in_alpha) -> None:
        agent = make_agent(name="Ana")
        call = make_call()
        assert call.agent_id == agent.id
        with pytest.raises(ProtectedError):
            Agent.objects.filter(id=agent.id).delete()
        assert Call.objects.get(id=call.id).status == Call.Status.ASSIGNED

    def test_an_agent_with_only_finished_calls_is_deleted_and_the_calls_keep_their_history(self, in_alpha) -> None:
        agent = make_agent(name="Ana")
        call = make_call()
        call_complete(call_id=call.id, outcome="KO", actor=TEST_ACTOR)
        Agent.objects.filter(id=agent.id).delete()
        call.refresh_from_db()
        assert call.agent_id is None and call.status == Call.Status.COMPLETED


class CleanupTests:
    def test_it_keeps_a_simulated_agent_holding_a_real_call(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            # Built on purpose (the engine never does this): a real call on an agent marked simulated,
            # as data from before the pools existed could hold.
            holder = make_agent(name="sim agent 0001")
            real_call = make_call()
            assert real_call.agent_id == holder.id
            Agent.objects.filter(id=holder.id).update(simulated=True)
            engine_rebuild()
            # A finished simulation: its agent, run and calls are removable.
            run = _run()
            spare = _sim_agent(name="sim agent 0002")
            finished = _sim_call(run)
            assert finished.agent_id == spare.id
            call_complete(call_id=finished.id, outcome="OK", actor=SIMULATOR)
            SimulationRun.objects.filter(id=run.id).update(status=SimulationRun.Status.FINISHED)
            # A real agent whose name looks like a simulation's.
            namesake = make_agent(name="sim agent Bob")
        out = StringIO()
        call_command("cleanup", "--tenant", "alpha", "--yes", stdout=out)
        assert "Kept because in use" in out.getvalue()
        with schema_context(alpha.schema_name):
            assert set(Agent.objects.values_list("id", flat=True)) == {holder.id, namesake.id}
            assert list(Call.objects.values_list("id", "status")) == [(real_call.id, Call.Status.ASSIGNED)]
            assert not SimulationRun.objects.exists()
            assert not engine_drift()

    def test_it_leaves_a_run_that_is_going_on_alone(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            run = _run()  # RUNNING
            agent = _sim_agent()
            talking = _sim_call(run, 0)
            waiting = _sim_call(run, 1)
            idle = _sim_agent(name="sim agent 0001", status=Agent.Status.OFFLINE)
        call_command("cleanup", "--tenant", "alpha", "--yes", stdout=StringIO())
        with schema_context(alpha.schema_name):
            assert SimulationRun.objects.filter(id=run.id).exists()
            assert set(Call.objects.values_list("id", flat=True)) == {talking.id, waiting.id}
            assert set(Agent.objects.values_list("id", flat=True)) == {agent.id, idle.id}
            agent_set_status(agent=idle, status=Agent.Status.AVAILABLE, actor=SIMULATOR)
            waiting.refresh_from_db()
            assert waiting.agent_id == idle.id  # the run goes on as before
            assert not engine_drift()


class DemoTests:
    def test_demo_traffic_leaves_the_tour_agent_and_call_alone(self, alpha) -> None:
        # Demo traffic first: its simulated agents are then the longest idle in the tenant.
        call_command(
            "demo", "--tenant", "alpha", "--agents", "4", "--time-scale", "5000", "--calls", "8", stdout=StringIO()
        )
        client = alpha.client()
        ana = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"}).json()
        assert client.put(f"/agents/{ana['id']}/status", {"status": "AVAILABLE"}).status_code == 200
        call = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})
        assert call.status_code == 201 and call.json()["agent_id"] == ana["id"]
        with schema_context(alpha.schema_name):
            demo_agents = set(Agent.objects.filter(simulated=True).values_list("id", flat=True))
            assert len(demo_agents) == 4
            assert not Call.objects.filter(simulated=False, agent_id__in=demo_agents).exists()
            assert not Call.objects.filter(simulated=True, agent_id=ana["id"]).exists()
