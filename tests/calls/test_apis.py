"""The calls API (SPEC §4): create and assign, idempotent retries, list and detail, complete, cancel."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import assert_problem

PHONE = "+34600123456"
MASKED = "+34*****3456"


def _agent(
    client: Any, *, name: str = "Ana", agent_type: str = "agente_tipo_1", status: str = "AVAILABLE"
) -> dict[str, Any]:
    response = client.post("/agents", {"name": name, "agent_type": agent_type, "status": status})
    assert response.status_code == 201, response.content
    return response.json()


def _call(client: Any, *, expect: int | None = None, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    body = {"phone_number": PHONE, "call_type": "llamada_tipo_1", **fields}
    response = client.post("/calls", body, headers=headers)
    if expect is not None:
        assert response.status_code == expect, response.content
    return response


def _count(client: Any, query: str = "") -> int:
    response = client.get(f"/calls{query}{'&' if query else '?'}limit=500")
    assert response.status_code == 200, response.content
    assert response.json()["next"] is None
    return len(response.json()["results"])


def _field_errors(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


class CallCreateApiTests:
    def test_it_assigns_a_call_to_an_available_agent(self, alpha):
        client = alpha.client()
        agent = _agent(client)

        response = _call(client, priority=3, external_id="crm-1")

        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "ASSIGNED"
        assert body["agent_id"] == agent["id"]
        assert body["assignment_time_ms"] > 0
        assert body["assigned_at"] is not None
        assert body["phone_number"] == PHONE
        assert (body["call_type"], body["priority"], body["external_id"]) == ("llamada_tipo_1", 3, "crm-1")
        assert response["Location"] == f"/calls/{body['id']}"
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BUSY"

    def test_it_queues_a_call_when_nobody_is_free(self, alpha):
        client = alpha.client()
        _agent(client, status="OFFLINE")

        response = _call(client)

        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "QUEUED"
        assert body["agent_id"] is None
        assert body["queued_at"] is not None
        assert body["phone_number"] == PHONE
        assert body["priority"] == 0

    def test_it_rejects_a_call_as_saturated_when_the_queue_has_no_room(self, alpha):
        client = alpha.client()
        assert client.put("/config", {"max_queue_length": 0}).status_code == 200

        response = _call(client)

        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        body = response.json()
        assert body["status"] == "SATURATED"
        assert body["phone_number"] == PHONE
        assert uuid.UUID(body["id"])
        assert client.get(f"/calls/{body['id']}").json()["status"] == "SATURATED"

    def test_it_still_assigns_when_the_queue_has_no_room_but_an_agent_is_free(self, alpha):
        client = alpha.client()
        assert client.put("/config", {"max_queue_length": 0}).status_code == 200
        _agent(client)

        assert _call(client, expect=201).json()["status"] == "ASSIGNED"

    def test_it_rejects_a_malformed_phone_number(self, alpha):
        client = alpha.client()
        _agent(client)

        for phone_number in (
            "123",
            "+0123456789",
            "abc",
            "+34 600 123 456",
            "34600123456",
            "+1234567890123456",
            "+12345",
        ):
            body = assert_problem(_call(client, phone_number=phone_number), 400, "invalid_phone_number")
            assert "phone_number" in _field_errors(body), phone_number

        assert _count(client) == 0
        assert client.get("/agents/available").json()["count"] == 1

    def test_it_rejects_a_phone_number_with_digits_outside_ascii(self, alpha):
        client = alpha.client()

        for phone_number in (
            "+34\u0666\u0660\u0660\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
            "+3460012345\uff16",  # a fullwidth digit
        ):
            assert_problem(_call(client, phone_number=phone_number), 400, "invalid_phone_number")

        assert _count(client) == 0

    def test_it_rejects_a_phone_number_far_too_long(self, alpha):
        client = alpha.client()

        response = _call(client, phone_number="+" + "1" * 60)

        assert response.status_code == 400
        assert "phone_number" in _field_errors(response.json())
        assert _count(client) == 0

    def test_it_rejects_an_unknown_call_type(self, alpha):
        client = alpha.client()

        body = assert_problem(_call(client, call_type="llamada_tipo_9"), 400, "unknown_call_type")

        assert "call_type" in _field_errors(body)
        assert _count(client) == 0

    def test_it_rejects_a_priority_outside_0_to_9(self, alpha):
        client = alpha.client()

        for priority in (10, -1, "high", 2.5, True):
            body = assert_problem(_call(client, priority=priority), 400, "validation_error")
            assert "priority" in _field_errors(body), priority

        assert _count(client) == 0

    def test_it_rejects_an_unknown_field(self, alpha):
        client = alpha.client()

        body = assert_problem(_call(client, agent_id=str(uuid.uuid4())), 400, "validation_error")

        assert "agent_id" in _field_errors(body)
        assert _count(client) == 0

    def test_it_requires_a_phone_number_and_a_call_type(self, alpha):
        client = alpha.client()

        body = assert_problem(client.post("/calls", {}), 400, "validation_error")

        assert {"phone_number", "call_type"} <= _field_errors(body)
        assert _count(client) == 0


class CallIdempotencyTests:
    def test_it_replays_a_retry_with_the_same_idempotency_key(self, alpha):
        client = alpha.client()
        _agent(client)
        headers = {"Idempotency-Key": "retry-1"}

        first = _call(client, expect=201, headers=headers)
        retry = _call(client, headers=headers)

        assert retry.status_code == 201
        assert retry.json()["id"] == first.json()["id"]
        assert retry["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert _count(client) == 1

    def test_it_replays_a_queued_call_without_queueing_it_twice(self, alpha):
        client = alpha.client()
        headers = {"Idempotency-Key": "retry-2"}

        first = _call(client, expect=202, headers=headers)
        retry = _call(client, expect=202, headers=headers)

        assert retry.json()["id"] == first.json()["id"]
        assert retry["Idempotent-Replayed"] == "true"
        agent = _agent(client)
        assert client.get(f"/calls/{first.json()['id']}").json()["agent_id"] == agent["id"]
        second_agent = _agent(client, name="Bea")
        assert client.get(f"/agents/{second_agent['id']}").json()["status"] == "AVAILABLE"
        assert _count(client) == 1

    def test_it_refuses_the_same_key_with_a_different_body(self, alpha):
        client = alpha.client()
        headers = {"Idempotency-Key": "retry-3"}
        _call(client, expect=202, headers=headers)

        response = _call(client, headers=headers, phone_number="+34600999999")

        assert_problem(response, 422, "idempotency_key_reused")
        assert _count(client) == 1

    def test_it_creates_one_call_per_external_id(self, alpha):
        client = alpha.client()
        first = _call(client, expect=202, external_id="crm-42")

        retry = _call(client, external_id="crm-42")

        assert retry.status_code == 202
        assert retry.json()["id"] == first.json()["id"]
        assert retry["Idempotent-Replayed"] == "true"
        assert _count(client) == 1

    def test_it_creates_distinct_calls_for_distinct_keys(self, alpha):
        client = alpha.client()

        first = _call(client, expect=202, headers={"Idempotency-Key": "a"})
        second = _call(client, expect=202, headers={"Idempotency-Key": "b"})

        assert first.json()["id"] != second.json()["id"]
        assert _count(client) == 2

    def test_it_rejects_an_idempotency_key_that_is_too_long(self, alpha):
        client = alpha.client()

        response = _call(client, headers={"Idempotency-Key": "k" * 256})

        assert_problem(response, 400, "validation_error")
        assert _count(client) == 0


class CallListApiTests:
    def test_it_masks_phone_numbers_in_the_list_but_not_in_the_detail(self, alpha):
        client = alpha.client()
        call = _call(client, expect=202).json()

        listed = client.get("/calls").json()
        detail = client.get(f"/calls/{call['id']}").json()

        assert [item["phone_number"] for item in listed["results"]] == [MASKED]
        assert PHONE not in str(listed)
        assert detail["phone_number"] == PHONE

    def test_it_paginates_newest_first(self, alpha):
        client = alpha.client()
        ids = [_call(client, expect=202).json()["id"] for _ in range(3)]

        first = client.get("/calls?limit=2").json()
        _call(client, expect=202)  # a call arriving while the client pages shifts no page
        second = client.get(first["next"]).json()

        assert set(first) == {"next", "previous", "results"}
        assert [c["id"] for c in first["results"] + second["results"]] == ids[::-1]
        assert first["previous"] is None and second["previous"] and second["next"] is None

    def test_it_refuses_a_cursor_it_did_not_give(self, alpha):
        body = assert_problem(alpha.client().get("/calls?cursor=bogus"), 400, "invalid_cursor")

        assert body["errors"][0]["field"] == "cursor"

    def test_it_filters_by_status_and_call_type(self, alpha):
        client = alpha.client()
        _agent(client)
        assigned = _call(client, expect=201, call_type="llamada_tipo_1").json()
        queued_one = _call(client, expect=202, call_type="llamada_tipo_1").json()
        queued_two = _call(client, expect=202, call_type="llamada_tipo_2").json()

        def ids(query: str) -> set[str]:
            return {call["id"] for call in client.get(f"/calls?{query}").json()["results"]}

        assert ids("status=ASSIGNED") == {assigned["id"]}
        assert ids("status=QUEUED") == {queued_one["id"], queued_two["id"]}
        assert ids("call_type=llamada_tipo_2") == {queued_two["id"]}
        assert ids("status=QUEUED&call_type=llamada_tipo_1") == {queued_one["id"]}
        assert ids("status=COMPLETED") == set()
        assert ids(f"agent_id={assigned['agent_id']}") == {assigned["id"]}

    def test_it_rejects_invalid_filters(self, alpha):
        client = alpha.client()
        for query in ("status=LOST", "agent_id=nope", "created_after=yesterday", "page_size=501", "colour=red"):
            assert_problem(client.get(f"/calls?{query}"), 400, "validation_error")


class CallDetailApiTests:
    def test_it_answers_404_for_an_unknown_call(self, alpha):
        client = alpha.client()
        missing = uuid.uuid4()

        assert_problem(client.get(f"/calls/{missing}"), 404, "call_not_found")
        assert_problem(client.delete(f"/calls/{missing}"), 404, "call_not_found")
        assert_problem(client.post(f"/calls/{missing}/complete", {"outcome": "OK"}), 404, "call_not_found")

    def test_it_answers_404_for_an_id_that_is_not_a_uuid(self, alpha):
        client = alpha.client()

        assert client.get("/calls/12345").status_code == 404
        assert client.delete("/calls/abc").status_code == 404
        assert client.post("/calls/abc/complete", {}).status_code == 404


class CallCompleteApiTests:
    def test_it_completes_a_call_and_frees_its_agent(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()

        response = client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"})

        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["outcome"], body["agent_id"]) == ("COMPLETED", "OK", agent["id"])
        assert body["ended_at"] is not None
        assert body["actual_duration_seconds"] >= 0
        freed = client.get(f"/agents/{agent['id']}").json()
        assert freed["status"] == "AVAILABLE"
        assert (freed["calls_handled"], freed["calls_ok"], freed["calls_ko"]) == (1, 1, 0)
        assert freed["idle_since"] > agent["idle_since"]

    def test_it_counts_a_ko_outcome(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()

        assert client.post(f"/calls/{call['id']}/complete", {"outcome": "KO"}).json()["outcome"] == "KO"

        freed = client.get(f"/agents/{agent['id']}").json()
        assert (freed["calls_handled"], freed["calls_ok"], freed["calls_ko"]) == (1, 0, 1)

    def test_it_draws_an_outcome_when_none_is_given(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()

        response = client.post(f"/calls/{call['id']}/complete", {})

        assert response.status_code == 200
        outcome = response.json()["outcome"]
        assert outcome in {"OK", "KO"}
        freed = client.get(f"/agents/{agent['id']}").json()
        assert freed["calls_handled"] == 1
        assert freed["calls_ok" if outcome == "OK" else "calls_ko"] == 1

    def test_it_draws_ok_when_the_matrix_says_certain(self, alpha):
        client = alpha.client()
        matrix = client.get("/config/conversion-matrix").json()["matrix"]
        matrix["agente_tipo_1"]["llamada_tipo_1"] = 1.0
        assert client.put("/config/conversion-matrix", {"matrix": matrix}).status_code == 200
        _agent(client)
        call = _call(client, expect=201).json()

        assert client.post(f"/calls/{call['id']}/complete", {}).json()["outcome"] == "OK"

    def test_it_is_idempotent(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()
        first = client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"})

        again = client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"})

        assert again.status_code == 200
        assert again.json() == first.json()
        counters = client.get(f"/agents/{agent['id']}").json()
        assert (counters["calls_handled"], counters["calls_ok"]) == (1, 1)

    def test_it_refuses_to_complete_a_queued_call(self, alpha):
        client = alpha.client()
        call = _call(client, expect=202).json()

        assert_problem(client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"}), 409, "invalid_call_state")

        assert client.get(f"/calls/{call['id']}").json()["status"] == "QUEUED"

    def test_it_refuses_to_complete_a_cancelled_call(self, alpha):
        client = alpha.client()
        call = _call(client, expect=202).json()
        assert client.delete(f"/calls/{call['id']}").status_code == 200

        assert_problem(client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"}), 409, "invalid_call_state")

    def test_it_rejects_an_unknown_outcome(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()

        for body in ({"outcome": "MAYBE"}, {"outcome": "ok"}, {"result": "OK"}):
            assert_problem(client.post(f"/calls/{call['id']}/complete", body), 400, "validation_error")

        assert client.get(f"/calls/{call['id']}").json()["status"] == "ASSIGNED"
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BUSY"

    def test_it_hands_the_freed_agent_the_next_waiting_call(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()
        low = _call(client, expect=202, priority=1).json()
        high = _call(client, expect=202, priority=5).json()

        assert client.post(f"/calls/{call['id']}/complete", {"outcome": "KO"}).status_code == 200

        assert client.get(f"/calls/{high['id']}").json()["agent_id"] == agent["id"]
        assert client.get(f"/calls/{low['id']}").json()["status"] == "QUEUED"
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "BUSY"


class CallCancelApiTests:
    def test_it_cancels_a_queued_call_so_no_agent_gets_it(self, alpha):
        client = alpha.client()
        call = _call(client, expect=202).json()

        response = client.delete(f"/calls/{call['id']}")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "CANCELLED"
        assert body["ended_at"] is not None
        agent = _agent(client)
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "AVAILABLE"
        after = client.get(f"/calls/{call['id']}").json()
        assert (after["status"], after["agent_id"]) == ("CANCELLED", None)

    def test_it_hangs_up_an_assigned_call_and_frees_the_agent(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()

        response = client.delete(f"/calls/{call['id']}")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "CANCELLED"
        assert body["outcome"] is None
        assert body["ended_at"] is not None
        assert client.get(f"/agents/{agent['id']}").json()["status"] == "AVAILABLE"

    def test_it_is_idempotent(self, alpha):
        client = alpha.client()
        call = _call(client, expect=202).json()
        first = client.delete(f"/calls/{call['id']}")

        again = client.delete(f"/calls/{call['id']}")

        assert again.status_code == 200
        assert again.json()["status"] == "CANCELLED"
        assert again.json()["ended_at"] == first.json()["ended_at"]

    def test_it_refuses_to_cancel_a_completed_call(self, alpha):
        client = alpha.client()
        agent = _agent(client)
        call = _call(client, expect=201).json()
        assert client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"}).status_code == 200

        assert_problem(client.delete(f"/calls/{call['id']}"), 409, "invalid_call_state")

        after = client.get(f"/calls/{call['id']}").json()
        assert (after["status"], after["outcome"]) == ("COMPLETED", "OK")
        assert client.get(f"/agents/{agent['id']}").json()["calls_handled"] == 1

    def test_it_refuses_to_cancel_a_saturated_call(self, alpha):
        client = alpha.client()
        assert client.put("/config", {"max_queue_length": 0}).status_code == 200
        call = _call(client, expect=503).json()

        assert_problem(client.delete(f"/calls/{call['id']}"), 409, "invalid_call_state")
