"""Contract fixes: bad input of any shape is a 4xx problem, retries answer like the first time,
unknown paths are 404 problems for every method, and the hardening headers and log masking."""

from __future__ import annotations

import logging

from django.test import Client

from callcenter.logging import JsonFormatter, mask_phone_numbers
from tests.factories import make_agent
from tests.helpers import assert_problem

NEW_CALL = {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}


class NestedJsonTests:
    def test_it_answers_400_to_json_nested_deeper_than_the_parser_can_go(self, alpha) -> None:
        deep = "[" * 20_000 + "]" * 20_000  # 40 KB: under the 64 KB body limit
        for method, path in [("post", "/calls"), ("put", "/config"), ("post", "/agents")]:
            response = alpha.client().request(method.upper(), path, raw=deep)
            assert_problem(response, 400, "malformed_json")


class StrictJsonTypeTests:
    def test_it_refuses_a_number_where_a_string_is_expected(self, alpha) -> None:
        response = alpha.client().post("/agents", {"name": 123, "agent_type": "agente_tipo_1"})
        body = assert_problem(response, 400, "validation_error")
        assert body["errors"][0]["field"] == "name"

    def test_it_refuses_a_string_where_a_boolean_or_an_integer_is_expected(self, in_alpha) -> None:
        agent = make_agent(name="typed")
        client = in_alpha.client()
        response = client.put(f"/agents/{agent.id}/status", {"status": "OFFLINE", "force": "yes"})
        assert_problem(response, 400, "validation_error")
        response = client.post("/calls", {**NEW_CALL, "priority": "5"})
        assert_problem(response, 400, "validation_error")
        response = client.post("/calls", {**NEW_CALL, "priority": True})
        assert_problem(response, 400, "validation_error")

    def test_query_strings_are_still_converted(self, alpha) -> None:
        assert alpha.client().get("/calls?page_size=5").status_code == 200


class CompletionContractTests:
    def test_completing_a_completed_call_with_another_outcome_is_a_conflict(self, in_alpha) -> None:
        make_agent(name="closer")
        client = in_alpha.client()
        call = client.post("/calls", NEW_CALL).json()
        assert client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"}).json()["outcome"] == "OK"
        assert_problem(client.post(f"/calls/{call['id']}/complete", {"outcome": "KO"}), 409, "call_already_completed")
        again = client.post(f"/calls/{call['id']}/complete", {"outcome": "OK"})
        assert again.status_code == 200 and again.json()["outcome"] == "OK"
        assert client.get(f"/calls/{call['id']}").json()["outcome"] == "OK"


class IdempotentReplayTests:
    def test_a_replay_answers_the_first_status_after_the_call_moved_on(self, in_alpha) -> None:
        make_agent(name="only one")
        client = in_alpha.client()
        first = client.post("/calls", NEW_CALL, headers={"Idempotency-Key": "a-1"})
        assert first.status_code == 201
        waiting = client.post(
            "/calls", {**NEW_CALL, "phone_number": "+34600999888"}, headers={"Idempotency-Key": "b-1"}
        )
        assert waiting.status_code == 202
        client.post(f"/calls/{first.json()['id']}/complete", {"outcome": "OK"})  # b-1 now gets the agent
        assert client.get(f"/calls/{waiting.json()['id']}").json()["status"] == "ASSIGNED"
        replay = client.post("/calls", NEW_CALL, headers={"Idempotency-Key": "a-1"})
        assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
        assert replay.json()["status"] == "COMPLETED"
        replay = client.post("/calls", {**NEW_CALL, "phone_number": "+34600999888"}, headers={"Idempotency-Key": "b-1"})
        assert replay.status_code == 202 and replay.json()["status"] == "ASSIGNED"


class UnknownPathTests:
    def test_every_method_on_an_unknown_path_is_a_404_problem(self, alpha) -> None:
        client = alpha.client()
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            body = None if method == "GET" else {"a": 1}
            assert_problem(client.request(method, "/no/such/path", body), 404, "not_found")

    def test_without_a_key_an_unknown_path_asks_for_a_tenant_for_every_method(self) -> None:
        client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
        for method in ("get", "post", "put", "delete"):
            response = getattr(client, method)("/no/such/path")
            assert_problem(response, 401, "tenant_required")


class SecurityHeaderTests:
    def test_responses_with_a_full_phone_number_are_not_stored(self, in_alpha) -> None:
        make_agent(name="header")
        client = in_alpha.client()
        created = client.post("/calls", NEW_CALL)
        assert created.json()["phone_number"] == "+34600123456"
        assert created["Cache-Control"] == "no-store"
        detail = client.get(f"/calls/{created.json()['id']}")
        assert detail.json()["phone_number"] == "+34600123456"
        assert detail["Cache-Control"] == "no-store"

    def test_every_response_has_a_content_security_policy_allowing_only_this_host(self, alpha) -> None:
        for response in (alpha.client().get("/config"), Client().get("/admin/login/"), Client().get("/health")):
            policy = response["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert "http" not in policy


class LogMaskingTests:
    def test_it_masks_phone_numbers_but_keeps_ids_whole(self) -> None:
        ids = "call 550e8400-e29b-41d4-a716-446655440000 agent 12345678-1234-1234-1234-123456789012"
        assert mask_phone_numbers(ids) == ids
        assert (
            mask_phone_numbers("request 0123456789abcdef0123456789abcdef") == "request 0123456789abcdef0123456789abcdef"
        )
        assert mask_phone_numbers("from +34600123456 to +34 600 123 457") == "from +34***56 to +34***57"

    def test_a_log_line_names_the_call_id_in_full(self) -> None:
        record = logging.LogRecord(
            "x",
            logging.INFO,
            __file__,
            1,
            "call %s for %s",
            ("4a87bd12-0000-4000-8000-000000000001", "+34600123456"),
            None,
        )
        line = JsonFormatter().format(record)
        assert "4a87bd12-0000-4000-8000-000000000001" in line and "+34600123456" not in line
