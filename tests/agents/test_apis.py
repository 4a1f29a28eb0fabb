"""The agents API (SPEC §4): create, list, available line, detail, rename/retype, delete, status."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import assert_problem


def _create(client: Any, *, expect: int = 201, **fields: Any) -> dict[str, Any]:
    body = {"name": "Ana", "agent_type": "agente_tipo_1", **fields}
    response = client.post("/agents", body)
    assert response.status_code == expect, response.content
    return response.json()


def _set_status(client: Any, agent_id: str, status: str, **extra: Any) -> Any:
    return client.put(f"/agents/{agent_id}/status", {"status": status, **extra})


def _busy_agent(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An agent holding a call (created AVAILABLE, then given a call)."""
    agent = _create(client, name="Busy", status="AVAILABLE")
    response = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})
    assert response.status_code == 201, response.content
    call = response.json()
    assert call["agent_id"] == agent["id"]
    return agent, call


def _field_errors(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


class AgentCreateApiTests:
    def test_it_creates_an_offline_agent_by_default(self, alpha):
        client = alpha.client()
        response = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_2"})

        assert response.status_code == 201
        body = response.json()
        assert body["name"] == "Ana"
        assert body["agent_type"] == "agente_tipo_2"
        assert body["status"] == "OFFLINE"
        assert body["idle_since"] is None
        assert (body["calls_handled"], body["calls_ok"], body["calls_ko"]) == (0, 0, 0)
        assert uuid.UUID(body["id"])
        assert client.get(f"/agents/{body['id']}").json() == body

    def test_it_creates_an_available_agent_with_an_idle_clock(self, alpha):
        client = alpha.client()
        body = _create(client, status="AVAILABLE")

        assert body["status"] == "AVAILABLE"
        assert body["idle_since"] is not None
        available = client.get("/agents/available").json()["results"]
        assert [agent["id"] for agent in available] == [body["id"]]

    def test_it_creates_an_agent_on_break(self, alpha):
        body = _create(alpha.client(), status="BREAK")

        assert body["status"] == "BREAK"
        assert body["idle_since"] is None

    def test_it_rejects_an_unknown_agent_type_with_a_field_error(self, alpha):
        client = alpha.client()
        response = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_99"})

        body = assert_problem(response, 400, "validation_error")
        assert "agent_type" in _field_errors(body)
        assert client.get("/agents").json()["count"] == 0

    def test_it_refuses_system_statuses_at_creation(self, alpha):
        client = alpha.client()
        for status in ("BUSY", "WRAP_UP"):
            response = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "status": status})
            body = assert_problem(response, 400, "validation_error")
            assert "status" in _field_errors(body)
        assert client.get("/agents").json()["count"] == 0

    def test_it_rejects_an_unknown_field(self, alpha):
        client = alpha.client()
        response = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "skill": 3})

        body = assert_problem(response, 400, "validation_error")
        assert "skill" in _field_errors(body)
        assert client.get("/agents").json()["count"] == 0

    def test_it_requires_a_name(self, alpha):
        response = alpha.client().post("/agents", {"agent_type": "agente_tipo_1"})

        body = assert_problem(response, 400, "validation_error")
        assert "name" in _field_errors(body)

    def test_it_rejects_a_name_that_is_too_long(self, alpha):
        client = alpha.client()
        response = client.post("/agents", {"name": "x" * 101, "agent_type": "agente_tipo_1"})

        body = assert_problem(response, 400, "validation_error")
        assert "name" in _field_errors(body)
        assert client.get("/agents").json()["count"] == 0

    def test_it_rejects_a_body_that_is_not_json(self, alpha):
        response = alpha.client().post("/agents", raw="{name: Ana")

        assert_problem(response, 400, "malformed_json")


class AgentListApiTests:
    def test_it_paginates(self, alpha):
        client = alpha.client()
        created = [_create(client, name=f"Agent {index}")["id"] for index in range(3)]

        first = client.get("/agents?page_size=2").json()
        assert set(first) == {"count", "next", "previous", "results"}
        assert first["count"] == 3
        assert first["previous"] is None
        assert first["next"] is not None and "page=2" in first["next"]
        assert len(first["results"]) == 2

        second = client.get("/agents?page_size=2&page=2").json()
        assert second["next"] is None
        assert second["previous"] is not None
        assert len(second["results"]) == 1
        assert [a["id"] for a in first["results"] + second["results"]] == created

    def test_it_takes_limit_and_follows_next(self, alpha):
        client = alpha.client()
        created = [_create(client, name=f"Agent {index}")["id"] for index in range(3)]

        first = client.get("/agents?limit=2").json()
        second = client.get(first["next"]).json()

        assert "limit=2" in first["next"]
        assert [a["id"] for a in first["results"] + second["results"]] == created

    def test_a_page_past_the_end_is_empty(self, alpha):
        client = alpha.client()
        _create(client)

        response = client.get("/agents?page=99")

        assert response.status_code == 200, response.content
        assert response.json()["results"] == [] and response.json()["count"] == 1
        assert response.json()["next"] is None and "page=1" in response.json()["previous"]

    def test_it_gives_the_new_agent_s_location(self, alpha):
        response = alpha.client().post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"})

        assert response.status_code == 201
        assert response["Location"] == f"/agents/{response.json()['id']}"
        assert alpha.client().get(response["Location"]).json()["name"] == "Ana"

    def test_it_lists_the_statuses_a_client_may_set_in_words(self, alpha):
        agent = _create(alpha.client())

        body = assert_problem(
            alpha.client().put(f"/agents/{agent['id']}/status", {"status": "BUSY"}), 400, "invalid_status_transition"
        )

        assert "AVAILABLE, BREAK or OFFLINE" in body["detail"] and "Agent.Status" not in body["detail"]

    def test_it_filters_by_status(self, alpha):
        client = alpha.client()
        available = _create(client, name="A", status="AVAILABLE")
        _create(client, name="B")
        on_break = _create(client, name="C", status="BREAK")

        def ids(query: str) -> list[str]:
            return [agent["id"] for agent in client.get(f"/agents?{query}").json()["results"]]

        assert ids("status=AVAILABLE") == [available["id"]]
        assert ids("status=BREAK") == [on_break["id"]]
        assert ids("status=BUSY") == []

    def test_it_filters_by_agent_type(self, alpha):
        client = alpha.client()
        first = _create(client, name="A", agent_type="agente_tipo_1")
        _create(client, name="B", agent_type="agente_tipo_2")

        response = client.get("/agents?agent_type=agente_tipo_1")

        assert [agent["id"] for agent in response.json()["results"]] == [first["id"]]
        assert client.get("/agents?agent_type=agente_tipo_4").json()["count"] == 0

    def test_it_rejects_invalid_filters(self, alpha):
        client = alpha.client()
        for query in ("status=SLEEPING", "page_size=0", "page_size=abc", "colour=red"):
            assert_problem(client.get(f"/agents?{query}"), 400, "validation_error")


class AgentAvailableListApiTests:
    def test_it_lists_only_available_agents_longest_idle_first(self, alpha):
        client = alpha.client()
        first, second, third = (_create(client, name=name)["id"] for name in ("first", "second", "third"))
        _create(client, name="offline")
        _create(client, name="on break", status="BREAK")
        for agent_id in (first, second, third):
            assert _set_status(client, agent_id, "AVAILABLE").status_code == 200

        listed = client.get("/agents/available").json()["results"]
        assert [agent["id"] for agent in listed] == [first, second, third]
        assert {agent["status"] for agent in listed} == {"AVAILABLE"}

        assert _set_status(client, first, "BREAK").status_code == 200
        assert _set_status(client, first, "AVAILABLE").status_code == 200

        listed = client.get("/agents/available").json()["results"]
        assert [agent["id"] for agent in listed] == [second, third, first]
        idle = [agent["idle_since"] for agent in listed]
        assert idle == sorted(idle)

    def test_it_leaves_out_a_busy_agent(self, alpha):
        client = alpha.client()
        _busy_agent(client)
        free = _create(client, name="Free", status="AVAILABLE")

        listed = client.get("/agents/available").json()["results"]

        assert [agent["id"] for agent in listed] == [free["id"]]


class AgentDetailApiTests:
    def test_it_returns_an_agent(self, alpha):
        client = alpha.client()
        agent = _create(client)

        response = client.get(f"/agents/{agent['id']}")

        assert response.status_code == 200
        assert response.json()["id"] == agent["id"]

    def test_it_answers_404_for_an_unknown_uuid(self, alpha):
        assert_problem(alpha.client().get(f"/agents/{uuid.uuid4()}"), 404, "agent_not_found")

    def test_it_answers_404_for_an_id_that_is_not_a_uuid(self, alpha):
        client = alpha.client()
        assert client.get("/agents/not-a-uuid").status_code == 404
        assert client.patch("/agents/not-a-uuid", {"name": "x"}).status_code == 404
        assert client.delete("/agents/123").status_code == 404
        assert client.put("/agents/123/status", {"status": "AVAILABLE"}).status_code == 404


class AgentUpdateApiTests:
    def test_it_renames_an_agent(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")

        response = client.patch(f"/agents/{agent['id']}", {"name": "Beatriz"})

        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "Beatriz"
        assert body["status"] == "AVAILABLE"
        assert body["idle_since"] == agent["idle_since"]
        assert client.get(f"/agents/{agent['id']}").json()["name"] == "Beatriz"

    def test_it_retypes_an_offline_agent(self, alpha):
        client = alpha.client()
        agent = _create(client)

        response = client.patch(f"/agents/{agent['id']}", {"agent_type": "agente_tipo_3"})

        assert response.status_code == 200
        assert response.json()["agent_type"] == "agente_tipo_3"
        assert client.get(f"/agents/{agent['id']}").json()["agent_type"] == "agente_tipo_3"

    def test_it_routes_by_the_new_type_after_a_retype(self, alpha):
        client = alpha.client()
        _create(client, name="Longest idle", agent_type="agente_tipo_1", status="AVAILABLE")
        retyped = _create(client, name="Retyped", agent_type="agente_tipo_1")
        assert client.patch(f"/agents/{retyped['id']}", {"agent_type": "agente_tipo_3"}).status_code == 200
        assert _set_status(client, retyped["id"], "AVAILABLE").status_code == 200
        assert client.put("/config", {"strategy": "best_conversion"}).status_code == 200

        # llamada_tipo_3 converts best with agente_tipo_3 (0.25 against 0.10).
        response = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_3"})

        assert response.status_code == 201, response.content
        assert response.json()["agent_id"] == retyped["id"]

    def test_it_refuses_to_retype_an_available_agent(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")

        response = client.patch(f"/agents/{agent['id']}", {"agent_type": "agente_tipo_3"})

        assert_problem(response, 409, "agent_not_off")
        assert client.get(f"/agents/{agent['id']}").json()["agent_type"] == "agente_tipo_1"

    def test_it_refuses_to_retype_to_an_unknown_type(self, alpha):
        client = alpha.client()
        agent = _create(client)

        response = client.patch(f"/agents/{agent['id']}", {"agent_type": "agente_tipo_99"})

        body = assert_problem(response, 400, "validation_error")
        assert "agent_type" in _field_errors(body)

    def test_it_rejects_bad_input_and_changes_nothing(self, alpha):
        client = alpha.client()
        agent = _create(client)

        for body in ({"name": "x" * 101}, {"status": "AVAILABLE"}, {"nickname": "A"}):
            assert_problem(client.patch(f"/agents/{agent['id']}", body), 400, "validation_error")
        assert client.get(f"/agents/{agent['id']}").json() == agent

    def test_it_answers_404_for_an_unknown_agent(self, alpha):
        assert_problem(alpha.client().patch(f"/agents/{uuid.uuid4()}", {"name": "x"}), 404, "agent_not_found")


class AgentDeleteApiTests:
    def test_it_deletes_an_agent(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")

        response = client.delete(f"/agents/{agent['id']}")

        assert response.status_code == 204
        assert_problem(client.get(f"/agents/{agent['id']}"), 404, "agent_not_found")
        assert client.get("/agents/available").json()["count"] == 0

    def test_it_takes_a_deleted_agent_out_of_the_line(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")
        assert client.delete(f"/agents/{agent['id']}").status_code == 204

        response = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})

        assert response.status_code == 202
        assert response.json()["status"] == "QUEUED"

    def test_it_refuses_to_delete_a_busy_agent(self, alpha):
        client = alpha.client()
        agent, call = _busy_agent(client)

        assert_problem(client.delete(f"/agents/{agent['id']}"), 409, "agent_busy")

        still = client.get(f"/agents/{agent['id']}")
        assert still.status_code == 200
        assert still.json()["status"] == "BUSY"
        assert client.get(f"/calls/{call['id']}").json()["status"] == "ASSIGNED"

    def test_it_answers_404_for_an_unknown_agent(self, alpha):
        assert_problem(alpha.client().delete(f"/agents/{uuid.uuid4()}"), 404, "agent_not_found")


class AgentSetStatusApiTests:
    def test_it_sets_each_client_status(self, alpha):
        client = alpha.client()
        agent = _create(client)

        for status in ("AVAILABLE", "BREAK", "OFFLINE", "AVAILABLE"):
            response = _set_status(client, agent["id"], status)
            assert response.status_code == 200, response.content
            assert response.json()["status"] == status
            assert client.get(f"/agents/{agent['id']}").json()["status"] == status

    def test_it_refuses_busy_from_a_client(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")

        for status in ("BUSY", "WRAP_UP"):
            assert_problem(_set_status(client, agent["id"], status), 400, "invalid_status_transition")
        assert client.get(f"/agents/{agent['id']}").json() == agent

    def test_it_rejects_an_unknown_status(self, alpha):
        client = alpha.client()
        agent = _create(client)

        for body in ({"status": "SLEEPING"}, {"status": 3}, {}, {"status": "AVAILABLE", "force": "maybe"}):
            assert_problem(client.put(f"/agents/{agent['id']}/status", body), 400, "validation_error")
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "OFFLINE"

    def test_it_refuses_to_change_a_busy_agent(self, alpha):
        client = alpha.client()
        agent, call = _busy_agent(client)

        for status in ("OFFLINE", "BREAK", "AVAILABLE"):
            assert_problem(_set_status(client, agent["id"], status), 409, "agent_busy")

        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BUSY"
        assert client.get(f"/calls/{call['id']}").json()["status"] == "ASSIGNED"

    def test_it_ends_the_call_of_a_busy_agent_when_forced(self, alpha):
        client = alpha.client()
        agent, call = _busy_agent(client)

        response = _set_status(client, agent["id"], "BREAK", force=True)

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "BREAK"
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BREAK"
        ended = client.get(f"/calls/{call['id']}").json()
        assert ended["status"] == "COMPLETED"
        assert ended["end_reason"] == "agent_forced_status"
        assert ended["ended_at"] is not None
        assert client.get("/agents/available").json()["count"] == 0

    def test_it_frees_a_forced_agent_for_the_next_call(self, alpha):
        client = alpha.client()
        agent, call = _busy_agent(client)
        waiting = client.post("/calls", {"phone_number": "+34600999999", "call_type": "llamada_tipo_2"}).json()
        assert waiting["status"] == "QUEUED"

        response = _set_status(client, agent["id"], "AVAILABLE", force=True)

        assert response.status_code == 200, response.content
        assert client.get(f"/calls/{call['id']}").json()["status"] == "COMPLETED"
        taken = client.get(f"/calls/{waiting['id']}").json()
        assert taken["status"] == "ASSIGNED"
        assert taken["agent_id"] == agent["id"]
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BUSY"

    def test_it_keeps_the_idle_clock_of_an_agent_already_available(self, alpha):
        client = alpha.client()
        agent = _create(client, status="AVAILABLE")
        later = _create(client, name="Later", status="AVAILABLE")

        response = _set_status(client, agent["id"], "AVAILABLE")

        assert response.status_code == 200
        assert response.json()["idle_since"] == agent["idle_since"]
        listed = client.get("/agents/available").json()["results"]
        assert [a["id"] for a in listed] == [agent["id"], later["id"]]

    def test_it_answers_404_for_an_unknown_agent(self, alpha):
        response = _set_status(alpha.client(), str(uuid.uuid4()), "AVAILABLE")

        assert_problem(response, 404, "agent_not_found")

    def test_it_gives_a_forced_agent_the_status_asked_for_even_with_wrap_up(self, alpha):
        client = alpha.client()
        assert client.put("/config", {"wrap_up_seconds": 30}).status_code == 200
        agent, call = _busy_agent(client)

        response = _set_status(client, agent["id"], "AVAILABLE", force=True)

        assert response.status_code == 200, response.content
        assert client.get(f"/calls/{call['id']}").json()["status"] == "COMPLETED"
        assert response.json()["status"] == "AVAILABLE"
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "AVAILABLE"

    def test_it_hands_a_waiting_call_to_an_agent_logging_in(self, alpha):
        client = alpha.client()
        agent = _create(client)
        waiting = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}).json()

        response = _set_status(client, agent["id"], "AVAILABLE")

        assert response.status_code == 200
        assert response.json()["status"] == "BUSY"
        assert client.get(f"/calls/{waiting['id']}").json()["agent_id"] == agent["id"]


class AgentCreateWithWaitingCallTests:
    def test_it_hands_a_waiting_call_to_an_agent_created_available(self, alpha):
        client = alpha.client()
        waiting = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}).json()
        assert waiting["status"] == "QUEUED"

        agent = _create(client, status="AVAILABLE")

        assert agent["status"] == "BUSY"
        assert client.get(f"/calls/{waiting['id']}").json()["agent_id"] == agent["id"]
