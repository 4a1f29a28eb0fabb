"""The idle clock (docs/assignment.md): longest idle = smallest idle_since, ties to the lower id;
becoming AVAILABLE (login, end of break, end of wrap-up) starts the clock, so a break never keeps
one's place in the line."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.models import Agent
from agents.services import agent_set_status
from assignment.services.recovery import engine_drift
from assignment.services.sweep import sweep_tenant
from calls.models import Call
from calls.services import call_complete
from routing.services import routing_config_forget
from tests.conftest import _reset_tenant
from tests.factories import TEST_ACTOR, make_agent, make_call


class IdleClockTests:
    def test_it_assigns_the_longest_idle_agent(self, in_alpha) -> None:
        first = make_agent(name="first")
        make_agent(name="second")
        call = make_call()
        assert call.status == Call.Status.ASSIGNED and call.agent_id == first.id

    def test_a_break_does_not_keep_ones_place_in_line(self, in_alpha) -> None:
        first = make_agent(name="first")
        second = make_agent(name="second")
        agent_set_status(agent=first, status=Agent.Status.BREAK, actor=TEST_ACTOR)
        agent_set_status(agent=first, status=Agent.Status.AVAILABLE, actor=TEST_ACTOR)
        assert make_call().agent_id == second.id
        assert make_call().agent_id == first.id

    def test_ties_go_to_the_lower_agent_id(self, in_alpha) -> None:
        agents = [make_agent(name=f"a{n}", status=Agent.Status.OFFLINE) for n in range(3)]
        same = timezone.now()
        # Give all three the same idle clock, through the rebuild path (Postgres is the truth).
        Agent.objects.update(status=Agent.Status.AVAILABLE, idle_since=same)
        from assignment.services.recovery import engine_rebuild

        engine_rebuild()
        lowest = min(agents, key=lambda a: str(a.id))
        assert make_call().agent_id == lowest.id

    def test_wrap_up_counts_from_the_end_of_wrap_up(self, in_alpha) -> None:
        from assignment.models import RoutingSettings

        RoutingSettings.objects.update(wrap_up_seconds=30)
        routing_config_forget()
        talker = make_agent(name="talker")
        call = make_call()
        finished, _ = call_complete(call_id=call.id, outcome="OK", actor=TEST_ACTOR)
        talker.refresh_from_db()
        assert talker.status == Agent.Status.WRAP_UP
        assert talker.wrap_up_ends_at == finished.ended_at + datetime.timedelta(seconds=30)
        other = make_agent(name="fresh")  # becomes available now, before the wrap-up ends
        # The wrap-up is not over: the sweep leaves it alone, the fresh agent takes the call.
        sweep_tenant()
        assert make_call().agent_id == other.id
        # Once it is over, the agent is available with idle_since = call end + wrap-up.
        sweep_tenant(now=talker.wrap_up_ends_at + datetime.timedelta(seconds=1))
        talker.refresh_from_db()
        assert talker.status == Agent.Status.AVAILABLE
        assert talker.idle_since == finished.ended_at + datetime.timedelta(seconds=30)

    def test_available_agents_are_listed_longest_idle_first(self, alpha) -> None:
        client = alpha.client()
        ids = [
            client.post("/agents", {"name": f"n{n}", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}).json()["id"]
            for n in range(3)
        ]
        client.put(f"/agents/{ids[0]}/status", {"status": "BREAK"})
        client.put(f"/agents/{ids[0]}/status", {"status": "AVAILABLE"})
        listed = [a["id"] for a in client.get("/agents/available").json()["results"]]
        assert listed == [ids[1], ids[2], ids[0]]


# --- Property: the engine picks exactly what a plain-Python model of the rules picks. -------------


@dataclass
class Model:
    """The rules of SPEC §2 in plain Python, fed with the clocks the system reports."""

    idle_since: dict[str, datetime.datetime | None] = field(default_factory=dict)  # available agents
    busy: dict[str, str] = field(default_factory=dict)  # agent -> call
    queue: list[tuple[int, datetime.datetime | None, str]] = field(default_factory=list)  # (-priority, queued_at, call)

    def longest_idle(self) -> str | None:
        if not self.idle_since:
            return None
        return min(self.idle_since, key=lambda agent: (self.idle_since[agent] or datetime.datetime.min, agent))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.integers(0, 9)),
        st.tuples(st.just("complete"), st.integers(0, 5)),
        st.tuples(st.just("break"), st.integers(0, 5)),
        st.tuples(st.just("available"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=25,
)


class IdleClockPropertyTests:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=operations)
    def test_it_matches_a_plain_model_of_the_rules(self, alpha, ops) -> None:
        _reset_tenant(alpha.schema_name)
        with schema_context(alpha.schema_name):
            agents = [make_agent(name=f"p{n}", status=Agent.Status.AVAILABLE) for n in range(6)]
            ids = [str(a.id) for a in agents]
            model = Model(idle_since={str(a.id): a.idle_since for a in agents})
            for op, arg in ops:
                if op == "call":
                    expected = model.longest_idle()
                    call = make_call(priority=arg)
                    if expected is None:
                        assert call.status == Call.Status.QUEUED
                        model.queue.append((-arg, call.queued_at, str(call.id)))
                    else:
                        assert str(call.agent_id) == expected, (ops, model)
                        del model.idle_since[expected]
                        model.busy[expected] = str(call.id)
                elif op == "complete":
                    agent_id = ids[arg]
                    if agent_id not in model.busy:
                        continue
                    call = Call.objects.select_related("agent").get(id=model.busy.pop(agent_id))
                    call_complete(call_id=call.id, outcome="OK", actor=TEST_ACTOR)
                    self._agent_freed(model, agent_id)
                elif op == "break":
                    agent_id = ids[arg]
                    if agent_id in model.busy:
                        continue
                    agent_set_status(agent=Agent.objects.get(id=agent_id), status=Agent.Status.BREAK, actor=TEST_ACTOR)
                    model.idle_since.pop(agent_id, None)
                else:
                    agent_id = ids[arg]
                    if agent_id in model.busy or agent_id in model.idle_since:
                        continue
                    agent_set_status(
                        agent=Agent.objects.get(id=agent_id), status=Agent.Status.AVAILABLE, actor=TEST_ACTOR
                    )
                    self._agent_freed(model, agent_id)
            assert not engine_drift()

    @staticmethod
    def _agent_freed(model: Model, agent_id: str) -> None:
        """A freed agent takes the highest-priority, oldest waiting call, else idles from now."""
        agent = Agent.objects.get(id=agent_id)
        if model.queue:
            model.queue.sort()
            _, _, call_id = model.queue.pop(0)
            assert agent.status == Agent.Status.BUSY
            assert str(Call.objects.get(id=call_id).agent_id) == agent_id
            model.busy[agent_id] = call_id
        else:
            assert agent.status == Agent.Status.AVAILABLE
            assert all(agent.idle_since >= other for other in model.idle_since.values())
            model.idle_since[agent_id] = agent.idle_since
