"""Fixtures of the fault tests: real processes, live traffic, and the invariants every fault ends with."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment import engine
from assignment.services.recovery import engine_drift
from assignment.services.sweep import sweep_tenant
from calls.models import Call
from tests.factories import make_agent
from tests.helpers import assert_no_event_lost
from tests.processes import Child, RedisServer, TcpProxy, Traffic, WebServer, start_web, wait_for

# Written to the terminal at the end of the run (pytest -rA shows it; see report_outage).
OUTAGES: list[str] = []


def report_outage(fault: str, *, unavailable_seconds: float | None, recovery_seconds: float | None) -> None:
    """What a fault test observed (never asserted: the machine is shared and timing varies)."""
    line = (
        f"{fault}: API answered 503 for "
        f"{'-' if unavailable_seconds is None else f'{unavailable_seconds:.1f} s'}, "
        f"recovered {'-' if recovery_seconds is None else f'{recovery_seconds:.1f} s'} after the fault ended"
    )
    OUTAGES.append(line)
    print(line)


def outage_window(traffic: Traffic, *, fault_ended: float) -> tuple[float | None, float | None]:
    """(seconds between the first and last 503 answer, seconds from the fault's end to the first
    call created after it)."""
    unavailable = [at for at, kind, status, body in traffic.answers if status == 503 and body and "code" in body]
    window = (max(unavailable) - min(unavailable)) if unavailable else None
    recovered = [at for at, kind, status, _ in traffic.answers if at >= fault_ended and status in (201, 202)]
    return window, (min(recovered) - fault_ended) if recovered else None


@pytest.fixture
def agents(in_alpha: Any) -> list[Agent]:
    return [make_agent(name=f"fault-{i}") for i in range(4)]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Any]]:
    """Everything a test starts goes in here and is stopped afterwards, whatever happened."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        if isinstance(thing, Traffic):
            thing.stop()
    for thing in reversed(started):
        if isinstance(thing, WebServer | Child | RedisServer | TcpProxy):
            thing.stop()


@pytest.fixture
def web(tmp_path: Path, processes: list[Any], agents: list[Agent]) -> WebServer:
    server = start_web(tmp_path)
    processes.append(server)
    return server


@pytest.fixture
def redis_server(tmp_path: Path, processes: list[Any]) -> RedisServer:
    server = RedisServer(tmp_path).start()
    processes.append(server)
    return server


@pytest.fixture
def engine_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point this test process's engine at another Redis (the one the test kills)."""

    def point(url: str) -> None:
        monkeypatch.setattr(settings, "ENGINE_REDIS_URL", url)
        monkeypatch.setattr(engine, "_client", None)
        monkeypatch.setattr(engine, "_scripts", {})

    yield point
    engine._client = None
    engine._scripts.clear()


def assert_invariants(schema_name: str, traffic: Traffic | None = None) -> None:
    """Every fault ends here: one state per call, no agent with two calls, every call a client was
    told about recorded once, and Redis equal to Postgres once the sweep has run."""
    with schema_context(schema_name):

        def settled() -> bool:
            sweep_tenant()
            return not engine_drift()

        wait_for(settled, seconds=60, every=0.5, what="Redis equal to Postgres after the sweep")
        calls = list(Call.objects.values("id", "status", "agent_id", "assigned_at", "ended_at", "idempotency_key"))
        for call in calls:
            status = call["status"]
            assert status in Call.Status.values, call
            if status == Call.Status.ASSIGNED:
                assert call["agent_id"] and call["assigned_at"] and not call["ended_at"], call
            if status in (Call.Status.COMPLETED, Call.Status.CANCELLED, Call.Status.ABANDONED, Call.Status.SATURATED):
                assert call["ended_at"], call
        active = collections.Counter(call["agent_id"] for call in calls if call["status"] == Call.Status.ASSIGNED)
        assert all(count == 1 for count in active.values()), active
        busy = {agent.id for agent in Agent.objects.filter(status=Agent.Status.BUSY)}
        assert busy == set(active), (busy, active)
        assert_no_event_lost()
        if traffic is not None:
            by_key = {call["idempotency_key"]: str(call["id"]) for call in calls if call["idempotency_key"]}
            for key, call_id in dict(traffic.created).items():
                assert by_key.get(key) == call_id, (key, call_id, by_key.get(key))
