"""Domain events: an outbox row per event, written in the transaction of the change, numbered per
object, with the object as the API shows it; consumers in three phases."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django_tenants.utils import schema_context

from events import registry
from events.models import OutboxEvent
from events.registry import Event, Phase, subscribe, unsubscribe
from events.selectors import outbox_of
from events.services import outbox_dispatch

PHONE = "+34600123456"


def _agent(client: Any, name: str = "Ana", status: str = "AVAILABLE") -> dict[str, Any]:
    response = client.post("/agents", {"name": name, "agent_type": "agente_tipo_1", "status": status})
    assert response.status_code == 201, response.content
    return response.json()


def _call(client: Any) -> Any:
    return client.post("/calls", {"phone_number": PHONE, "call_type": "llamada_tipo_1"})


def _events(schema_name: str, object_type: str, object_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    with schema_context(schema_name):
        return [(e.type, e.sequence, e.payload) for e in outbox_of(object_type=object_type, object_id=object_id)]


def _listed(client: Any, call_id: str) -> dict[str, Any]:
    """The call as the list view shows it (phone number masked): what an event carries."""
    return next(c for c in client.get("/calls?limit=500").json()["results"] if c["id"] == call_id)


class OutboxTests:
    def test_it_records_each_step_of_a_call_with_the_call_as_the_api_shows_it(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        first = _call(client).json()
        waiting = _call(client).json()
        assert waiting["status"] == "QUEUED"

        client.post(f"/calls/{first['id']}/complete", {"outcome": "OK"})

        first_events = _events(alpha.schema_name, "call", first["id"])
        assert [(kind, sequence) for kind, sequence, _ in first_events] == [
            ("call.assigned", 1),
            ("call.completed", 2),
        ]
        assert first_events[-1][2] == _listed(client, first["id"])
        waiting_events = _events(alpha.schema_name, "call", waiting["id"])
        assert [(kind, sequence) for kind, sequence, _ in waiting_events] == [("call.queued", 1), ("call.assigned", 2)]
        assert waiting_events[-1][2] == _listed(client, waiting["id"])
        agent_events = _events(alpha.schema_name, "agent", agent["id"])
        statuses = [(payload["status"], sequence) for _, sequence, payload in agent_events]
        assert statuses == [("AVAILABLE", 1), ("BUSY", 2), ("BUSY", 3)]
        assert agent_events[-1][2] == client.get(f"/agents/{agent['id']}").json()

    def test_it_records_cancelled_abandoned_and_saturated_calls(self, alpha):
        client = alpha.client()
        cancelled = _call(client).json()
        client.delete(f"/calls/{cancelled['id']}")
        with schema_context(alpha.schema_name):
            from calls.services import call_abandon

            abandoned = _call(client).json()
            assert call_abandon(call_id=abandoned["id"])
        assert client.put("/config", {"max_queue_length": 0}).status_code == 200
        saturated = _call(client).json()

        assert [e[0] for e in _events(alpha.schema_name, "call", cancelled["id"])] == ["call.queued", "call.cancelled"]
        assert [e[0] for e in _events(alpha.schema_name, "call", abandoned["id"])] == ["call.queued", "call.abandoned"]
        assert [e[0] for e in _events(alpha.schema_name, "call", saturated["id"])] == ["call.saturated"]
        config = _events(alpha.schema_name, "config", "routing")
        assert config[-1][0] == "config.changed"
        assert config[-1][2]["after"]["max_queue_length"] == 0

    def test_it_writes_no_event_when_the_change_rolls_back(self, alpha):
        client = alpha.client()
        _agent(client)

        def refuse(event: Event) -> None:
            raise RuntimeError("consumer refuses")

        subscription = subscribe(registry.CALL_ASSIGNED, phase=Phase.IN_TRANSACTION, consumer=refuse, name="refuse")
        try:
            with pytest.raises(RuntimeError):
                _call(client)
        finally:
            unsubscribe(subscription)
        with schema_context(alpha.schema_name):
            assert not OutboxEvent.objects.filter(object_type="call").exists()
        assert client.get("/calls").json()["results"] == []

    def test_it_runs_on_commit_consumers_only_after_the_commit_and_outbox_ones_from_the_rows(self, alpha):
        seen: list[tuple[str, str]] = []
        on_commit = subscribe(
            registry.CALL_QUEUED,
            phase=Phase.ON_COMMIT,
            consumer=lambda event: seen.append(("commit", event.object_id)),
            name="on-commit-test",
        )
        from_outbox = subscribe(
            registry.CALL_QUEUED,
            phase=Phase.OUTBOX,
            consumer=lambda event: seen.append(("outbox", event.object_id)),
            name="outbox-test",
        )
        try:
            with schema_context(alpha.schema_name):
                from callcenter.actors import Actor
                from calls.models import CallType
                from calls.services import call_create

                with transaction.atomic():
                    created = call_create(
                        phone_number=PHONE,
                        call_type=CallType.objects.get(slug="llamada_tipo_1"),
                        actor=Actor.system("test"),
                    ).call
                    assert seen == []  # not committed yet
                assert seen == [("commit", str(created.id))]
                assert outbox_dispatch() >= 1
                assert seen[-1] == ("outbox", str(created.id))
                assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()
                assert outbox_dispatch() == 0  # each event is dispatched once
        finally:
            unsubscribe(on_commit)
            unsubscribe(from_outbox)

    def test_it_refuses_an_unknown_event_type(self):
        with pytest.raises(ValueError):
            subscribe("call.exploded", phase=Phase.ON_COMMIT, consumer=lambda event: None)

    def test_it_registers_the_simulation_planner_inside_the_transaction(self):
        planners = [
            s
            for s in registry.subscriptions()
            if s.event_type == registry.CALL_ASSIGNED and s.consumer.__module__ == "simulation.services"
        ]
        assert [s.phase for s in planners] == [Phase.IN_TRANSACTION]


class QueuedAssignmentTests:
    def test_it_records_a_waiting_call_handed_to_a_freed_agent_with_a_strategy_choice(self, alpha):
        from assignment.models import Assignment, Strategy

        client = alpha.client()
        _agent(client)
        first = _call(client).json()
        waiting = _call(client).json()

        client.post(f"/calls/{first['id']}/complete", {"outcome": "OK"})

        with schema_context(alpha.schema_name):
            recorded = Assignment.objects.get(call_id=waiting["id"])
        assert recorded.strategy in Strategy.values
        assert recorded.strategy == Strategy.LONGEST_IDLE  # the tenant's (default) strategy
