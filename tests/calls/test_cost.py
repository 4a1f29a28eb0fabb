"""What a call costs in round trips: SQL statements and Redis round trips of each request of a
call's life, pinned, so that a change that adds one fails here (docs/performance.md, "Where the
time goes", explains each one).

Caches that expire with time (the API key's and the configuration's copies in the process, the
rate-limit lease of the current second, the once-a-minute "key used" mark) are held still: the
counts are those of a warm process, which is what every request but the first few of each second
meets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.connection import AbstractConnection

import routing.services
import tenants.ratelimit
import tenants.selectors

PHONE = "+34600123456"


class _FrozenTime:
    """Stands for the ``time`` module in the rate limiter: one instant, so one window and one minute."""

    def __init__(self, instant: float) -> None:
        self.instant = instant

    def time(self) -> float:
        return self.instant


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import time

    monkeypatch.setattr(tenants.selectors, "LOCAL_KEY_SECONDS", 3600.0)
    monkeypatch.setattr(routing.services, "CONFIG_CACHE_SECONDS", 3600.0)
    monkeypatch.setattr(tenants.ratelimit, "time", _FrozenTime(time.time()))
    monkeypatch.setattr(tenants.ratelimit, "_leases", {})
    monkeypatch.setattr(tenants.ratelimit, "_marked", {})
    yield


class _Cost:
    def __init__(self) -> None:
        self.redis = 0
        self.statements: list[str] = []


@pytest.fixture
def measure(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``measure(request)`` -> (response, cost): the SQL statements and the Redis round trips (one
    per command or pipeline sent) the request made."""
    current: dict[str, _Cost | None] = {"cost": None}
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        cost = current["cost"]
        if cost is not None:
            cost.redis += 1
        send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)

    def run(request: Any) -> tuple[Any, _Cost]:
        cost = current["cost"] = _Cost()
        try:
            with CaptureQueriesContext(connection) as queries:
                response = request()
        finally:
            current["cost"] = None
        cost.statements = [q["sql"][:70] for q in queries.captured_queries]
        return response, cost

    return run


def _agent(client: Any, name: str) -> dict[str, Any]:
    response = client.post("/agents", {"name": name, "agent_type": "agente_tipo_1", "status": "AVAILABLE"})
    assert response.status_code == 201, response.content
    return response.json()


def _call(client: Any) -> Any:
    return client.post("/calls", {"phone_number": PHONE, "call_type": "llamada_tipo_1"})


class CallLifecycleCostTests:
    def test_each_request_of_a_call_s_life_costs_a_pinned_number_of_round_trips(self, alpha, warm, measure):
        client = alpha.client()
        _agent(client, "Ana")
        warmup = _call(client).json()  # fills the caches: API key, configuration, rate-limit lease
        assert client.post(f"/calls/{warmup['id']}/complete", {"outcome": "OK"}).status_code == 200

        assigned, assigned_cost = measure(lambda: _call(client))
        queued, queued_cost = measure(lambda: _call(client))
        handed, handed_cost = measure(
            lambda: client.post(f"/calls/{assigned.json()['id']}/complete", {"outcome": "OK"})
        )
        idle, idle_cost = measure(lambda: client.post(f"/calls/{queued.json()['id']}/complete", {"outcome": "OK"}))

        assert (assigned.status_code, queued.status_code, handed.status_code, idle.status_code) == (201, 202, 200, 200)
        # SQL, BEGIN and COMMIT included. POST /calls, assigned: both locks (the call id's and the
        # tenant's shared engine lock) in one statement, agent, assignment, call, outbox. Queued:
        # the locks, call, outbox. Completing: call and agent locked with the engine lock in one
        # statement, call, audit, assignment, agent, outbox; handing the freed agent the waiting
        # call adds that call, the agent, its assignment and a read of the agent.
        counts = {
            "assigned": len(assigned_cost.statements),
            "queued": len(queued_cost.statements),
            "complete, hands the next call": len(handed_cost.statements),
            "complete, agent idle": len(idle_cost.statements),
        }
        assert counts == {
            "assigned": 7,
            "queued": 5,
            "complete, hands the next call": 12,
            "complete, agent idle": 8,
        }, [assigned_cost.statements, queued_cost.statements, handed_cost.statements, idle_cost.statements]
        assert not any("search_path" in s for c in (assigned_cost, idle_cost) for s in c.statements)
        assert not any(s.startswith("SELECT 1") for c in (assigned_cost, idle_cost) for s in c.statements)
        # Redis: the claim script and, after the commit, the assignment's latency sample (one
        # pipeline); a completion: the release script (which hands over the waiting call), plus
        # that hand-over's latency sample.
        assert (assigned_cost.redis, queued_cost.redis, handed_cost.redis, idle_cost.redis) == (2, 1, 2, 1)


def _fresh_key_client(tenant: Any) -> Any:
    """A client with a key of its own: its counter in Redis starts at zero."""
    from callcenter.actors import Actor
    from tenants.services import apikey_create

    issued = apikey_create(tenant=tenant.tenant, name="cost", scope="read", actor=Actor.system("test"))
    return tenant.client(key=issued.raw_key)


class RateLimitCostTests:
    def test_a_process_asks_redis_once_per_lease_of_requests(self, alpha, warm, measure, settings):
        settings.API_RATE_LIMIT_PER_SECOND = 1000  # a lease of 10 requests
        assert tenants.ratelimit.lease_size(1000) == 10
        client = _fresh_key_client(alpha)
        assert client.get("/agents").status_code == 200  # the first lease and the "used" mark

        answers = []
        redis_round_trips = 0
        for _ in range(20):
            response, cost = measure(lambda: client.get("/agents"))
            answers.append(response.status_code)
            redis_round_trips += cost.redis

        assert set(answers) == {200}
        # 1 request of the first lease was left, then two more leases of 10: 2 round trips for 20 requests.
        assert redis_round_trips == 2

    def test_a_lease_is_cut_to_what_is_left_under_the_limit(self, alpha, warm, settings):
        settings.API_RATE_LIMIT_PER_SECOND = 250  # leases of 2
        client = _fresh_key_client(alpha)
        answers = [client.get("/agents").status_code for _ in range(260)]
        # One window (time is held still): exactly the limit is served, never more.
        assert answers.count(200) == 250
        assert set(answers[250:]) == {429}


class RepresentationTests:
    def test_the_hot_path_answer_is_the_output_serializer_s_in_every_state(self, alpha):
        from django_tenants.utils import schema_context

        from calls.apis import CallOutputSerializer, call_representation
        from calls.models import Call

        client = alpha.client()
        _agent(client, "Ana")
        assigned = _call(client).json()
        queued = client.post(
            "/calls", {"phone_number": PHONE, "call_type": "llamada_tipo_2", "priority": 3, "external_id": "x-1"}
        ).json()
        client.post(f"/calls/{assigned['id']}/complete", {"outcome": "KO"})
        with schema_context(alpha.schema_name):
            calls = list(Call.objects.select_related("call_type").filter(id__in=[assigned["id"], queued["id"]]))
            assert {str(c.status) for c in calls} == {"COMPLETED", "ASSIGNED"}
            for call in calls:
                for full_phone in (False, True):
                    expected = CallOutputSerializer(call, context={"full_phone": full_phone}).data
                    assert call_representation(call, full_phone=full_phone) == dict(expected)
