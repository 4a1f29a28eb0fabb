"""Real races: many threads hit one tenant's API at once (calls, completions, cancels, status flips).
Afterwards no agent ever held two calls, every call is in exactly one state, and Redis equals
Postgres."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from itertools import pairwise

from django.db import connection
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment.models import Assignment
from assignment.services.recovery import engine_drift
from calls.models import Call
from tests.helpers import ApiClient, assert_no_event_lost

THREADS = 8
OPS_PER_THREAD = 40


def _worker(key: str, agent_ids: list[str], seed: int, errors: list[str], statuses: Counter[int]) -> None:
    rng = random.Random(seed)
    client = ApiClient(key=key)
    try:
        for n in range(OPS_PER_THREAD):
            roll = rng.random()
            if roll < 0.5:
                response = client.post(
                    "/calls",
                    {
                        "phone_number": f"+3461{seed:02d}{n:05d}",
                        "call_type": f"llamada_tipo_{rng.randint(1, 4)}",
                        "priority": rng.randint(0, 9),
                    },
                )
            elif roll < 0.7:
                calls = client.get("/calls?status=ASSIGNED&page_size=20").json()["results"]
                if not calls:
                    continue
                response = client.post(f"/calls/{rng.choice(calls)['id']}/complete", {})
            elif roll < 0.8:
                calls = client.get("/calls?status=QUEUED&page_size=20").json()["results"]
                if not calls:
                    continue
                response = client.delete(f"/calls/{rng.choice(calls)['id']}")
            else:
                status = rng.choice(["AVAILABLE", "BREAK", "OFFLINE", "AVAILABLE"])
                response = client.put(
                    f"/agents/{rng.choice(agent_ids)}/status", {"status": status, "force": rng.random() < 0.2}
                )
            statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                errors.append(f"{response.status_code} {response.content[:300]!r}")
            if response.status_code == 503 and response.json().get("status") != "SATURATED":
                errors.append(f"503 {response.content[:300]!r}")
    except Exception as exc:  # collected and asserted on by the test
        errors.append(repr(exc))
    finally:
        connection.close()


def check_invariants(schema_name: str) -> None:
    with schema_context(schema_name):
        # Every call is in exactly one known state; open calls are consistent with their agent.
        for call in Call.objects.all():
            assert call.status in Call.Status.values
            if call.status == Call.Status.ASSIGNED:
                assert call.agent_id is not None
                assert Agent.objects.get(id=call.agent_id).status == Agent.Status.BUSY
            if call.status in Call.TERMINAL:
                assert call.ended_at is not None
        # No agent ever held two calls: its assignments never overlap in time.
        by_agent: dict[object, list[Assignment]] = defaultdict(list)
        for assignment in Assignment.objects.order_by("created_at"):
            by_agent[assignment.agent_id].append(assignment)
        for agent_id, assignments in by_agent.items():
            open_ones = [a for a in assignments if a.ended_at is None]
            assert len(open_ones) <= 1, agent_id
            for earlier, later in pairwise(assignments):
                assert earlier.ended_at is not None and earlier.ended_at <= later.created_at, agent_id
        # Each call was assigned at most once.
        per_call = Counter(Assignment.objects.values_list("call_id", flat=True))
        assert not per_call or max(per_call.values()) == 1
        # Busy agents hold exactly one ASSIGNED call.
        for agent in Agent.objects.filter(status=Agent.Status.BUSY):
            assert Call.objects.filter(agent=agent, status=Call.Status.ASSIGNED).count() == 1
        drift = engine_drift()
        assert not drift, drift
        assert_no_event_lost()


class ConcurrencyTests:
    def test_it_never_assigns_an_agent_twice_under_concurrent_traffic(self, alpha) -> None:
        client = alpha.client()
        client.put("/config", {"max_queue_length": 15})
        agent_ids = [
            client.post(
                "/agents", {"name": f"r{n}", "agent_type": f"agente_tipo_{n % 4 + 1}", "status": "AVAILABLE"}
            ).json()["id"]
            for n in range(6)
        ]
        errors: list[str] = []
        statuses: Counter[int] = Counter()
        threads = [
            threading.Thread(target=_worker, args=(alpha.api_key, agent_ids, seed, errors, statuses))
            for seed in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert statuses[201] > 0 and statuses[202] > 0, statuses
        check_invariants(alpha.schema_name)

    def test_exactly_one_caller_wins_the_last_free_agent(self, alpha) -> None:
        client = alpha.client()
        agent_id = client.post(
            "/agents", {"name": "only", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}
        ).json()["id"]
        results: list[tuple[str, str | None]] = []
        barrier = threading.Barrier(10)

        def caller(n: int) -> None:
            try:
                api = ApiClient(key=alpha.api_key)
                barrier.wait()
                body = api.post("/calls", {"phone_number": f"+346200000{n:02d}", "call_type": "llamada_tipo_1"}).json()
                results.append((body["status"], body["agent_id"]))
            finally:
                connection.close()

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assigned = [agent for status, agent in results if status == "ASSIGNED"]
        assert assigned == [agent_id]
        assert [status for status, _ in results].count("QUEUED") == 9
        check_invariants(alpha.schema_name)
