"""Tenant configuration APIs (SPEC §2, §4): routing settings, conversion matrix, agent and call types."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from tests.helpers import assert_problem

AGENT_TYPES = ["agente_tipo_1", "agente_tipo_2", "agente_tipo_3", "agente_tipo_4"]
CALL_TYPES = ["llamada_tipo_1", "llamada_tipo_2", "llamada_tipo_3", "llamada_tipo_4"]

# SPEC §2: P(OK) by agent type (rows) and call type (columns).
REFERENCE_MATRIX = {
    "agente_tipo_1": {"llamada_tipo_1": 0.30, "llamada_tipo_2": 0.20, "llamada_tipo_3": 0.10, "llamada_tipo_4": 0.05},
    "agente_tipo_2": {"llamada_tipo_1": 0.20, "llamada_tipo_2": 0.15, "llamada_tipo_3": 0.07, "llamada_tipo_4": 0.04},
    "agente_tipo_3": {"llamada_tipo_1": 0.10, "llamada_tipo_2": 0.12, "llamada_tipo_3": 0.25, "llamada_tipo_4": 0.08},
    "agente_tipo_4": {"llamada_tipo_1": 0.05, "llamada_tipo_2": 0.08, "llamada_tipo_3": 0.10, "llamada_tipo_4": 0.20},
}

DEFAULTS = {
    "strategy": "longest_idle",
    "max_queue_length": 1000,
    "max_wait_seconds": 300,
    "wrap_up_seconds": 0,
    "duration_model": "normal",
    "duration_mean_seconds": 180,
    "duration_std_seconds": 180,
    "duration_min_seconds": 1,
    "duration_max_seconds": 3600,
    "time_scale": 1,
    "max_assignment_time_ms": 100,
}


def _without_timestamps(config: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in config.items() if name != "updated_at"}


def _matrix(client: Any) -> dict[str, dict[str, float]]:
    response = client.get("/config/conversion-matrix")
    assert response.status_code == 200, response.content
    return response.json()["matrix"]


def _rates(slugs: list[str], value: float = 0.5) -> dict[str, float]:
    return dict.fromkeys(slugs, value)


def _slugs(client: Any, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return [item["slug"] for item in response.json()["results"]]


class ConfigApiTests:
    def test_it_has_the_spec_defaults(self, alpha):
        response = alpha.client().get("/config")

        assert response.status_code == 200
        config = response.json()
        for name, value in DEFAULTS.items():
            assert config[name] == value, name
        assert config["call_type_mix"] == dict.fromkeys(CALL_TYPES, 0.25)

    def test_it_updates_only_the_fields_given(self, alpha):
        client = alpha.client()
        before = client.get("/config").json()

        response = client.put("/config", {"wrap_up_seconds": 5, "strategy": "best_conversion"})

        assert response.status_code == 200, response.content
        expected = {**_without_timestamps(before), "wrap_up_seconds": 5, "strategy": "best_conversion"}
        assert _without_timestamps(response.json()) == expected
        assert _without_timestamps(client.get("/config").json()) == expected

    def test_it_audits_a_change(self, alpha, in_alpha):
        response = alpha.client().put("/config", {"max_queue_length": 7})
        assert response.status_code == 200

        entry = AuditEntry.objects.get(action="config.update")
        assert entry.before is not None and entry.after is not None
        assert entry.before["max_queue_length"] == 1000
        assert entry.after["max_queue_length"] == 7
        assert entry.actor.startswith("key:")

    def test_it_does_not_audit_a_change_that_changes_nothing(self, alpha, in_alpha):
        assert alpha.client().put("/config", {"max_queue_length": 1000}).status_code == 200

        assert not AuditEntry.objects.filter(action="config.update").exists()

    def test_it_rejects_invalid_settings_and_changes_nothing(self, alpha):
        client = alpha.client()
        before = client.get("/config").json()

        for body in (
            {"strategy": "fastest"},
            {"max_queue_length": -1},
            {"max_wait_seconds": -5},
            {"wrap_up_seconds": -1},
            {"duration_std_seconds": -1},
            {"time_scale": 0},
            {"time_scale": -2},
            {"duration_model": "uniform"},
            {"duration_min_seconds": 100, "duration_max_seconds": 100},
            {"duration_min_seconds": 500, "duration_max_seconds": 200, "duration_mean_seconds": 300},
            {"duration_max_seconds": 0.5},
            {"duration_mean_seconds": 5000},
            {"max_queue_length": "lots"},
            {"wrap_up_seconds": True},
            {"time_scale": True},
            {"colour": "blue"},
            {"wrap_up_seconds": 5, "strategy": "fastest"},
        ):
            assert_problem(client.put("/config", body), 400, "validation_error")
            assert client.get("/config").json() == before, body

    def test_it_accepts_back_what_it_shows(self, alpha):
        client = alpha.client()
        shown = client.get("/config").json()

        response = client.put("/config", {**shown, "max_wait_seconds": 60})

        assert response.status_code == 200, response.content
        assert _without_timestamps(response.json()) == {**_without_timestamps(shown), "max_wait_seconds": 60}

    def test_it_sets_the_call_type_mix_normalised(self, alpha):
        client = alpha.client()
        mix = {"llamada_tipo_1": 1, "llamada_tipo_2": 1, "llamada_tipo_3": 2, "llamada_tipo_4": 0}

        response = client.put("/config", {"call_type_mix": mix})

        assert response.status_code == 200, response.content
        expected = {"llamada_tipo_1": 0.25, "llamada_tipo_2": 0.25, "llamada_tipo_3": 0.5, "llamada_tipo_4": 0.0}
        assert response.json()["call_type_mix"] == expected
        assert client.get("/config").json()["call_type_mix"] == expected

    def test_it_rejects_a_call_type_mix_that_does_not_name_every_type(self, alpha):
        client = alpha.client()
        before = client.get("/config").json()

        for mix in (
            {"llamada_tipo_1": 0.5, "llamada_tipo_2": 0.5, "llamada_tipo_3": 0.0},  # one missing
            {**dict.fromkeys(CALL_TYPES, 0.25), "llamada_tipo_9": 0.1},  # one unknown
            {"llamada_tipo_1": 0.5, "llamada_tipo_2": 0.5, "llamada_tipo_3": 0.0, "llamada_tipo_9": 0.0},
            dict.fromkeys(CALL_TYPES, 0),
            {**dict.fromkeys(CALL_TYPES, 0.25), "llamada_tipo_1": -0.25},
            {**dict.fromkeys(CALL_TYPES, 0.25), "llamada_tipo_1": True},
        ):
            response = client.put("/config", {"call_type_mix": mix, "wrap_up_seconds": 9})
            assert response.status_code == 400, (mix, response.content)
            assert response["Content-Type"].startswith("application/problem+json")
            assert client.get("/config").json() == before, mix


class ConversionMatrixApiTests:
    def test_it_has_the_spec_reference_values(self, alpha):
        matrix = _matrix(alpha.client())

        assert sorted(matrix) == AGENT_TYPES
        for agent_type, row in REFERENCE_MATRIX.items():
            assert sorted(matrix[agent_type]) == CALL_TYPES
            for call_type, p_ok in row.items():
                assert matrix[agent_type][call_type] == pytest.approx(p_ok), (agent_type, call_type)

    def test_it_round_trips_a_valid_matrix(self, alpha, in_alpha):
        client = alpha.client()
        matrix = {
            agent: {call: round(0.1 * (i + 1) + 0.01 * j, 2) for j, call in enumerate(CALL_TYPES)}
            for i, agent in enumerate(AGENT_TYPES)
        }
        matrix["agente_tipo_4"]["llamada_tipo_4"] = 1
        matrix["agente_tipo_1"]["llamada_tipo_1"] = 0

        response = client.put("/config/conversion-matrix", {"matrix": matrix})

        assert response.status_code == 200, response.content
        assert response.json()["matrix"] == matrix
        assert _matrix(client) == matrix
        assert AuditEntry.objects.filter(action="config.conversion_matrix").count() == 1

    def test_it_rejects_a_cell_outside_0_1(self, alpha):
        client = alpha.client()

        for value in (1.01, -0.01, 2, "high", None, True):
            matrix: dict[str, dict[str, Any]] = _matrix(client)
            matrix["agente_tipo_2"]["llamada_tipo_3"] = value
            assert_problem(client.put("/config/conversion-matrix", {"matrix": matrix}), 400, "validation_error")
            assert _matrix(client) == REFERENCE_MATRIX, value

    def test_it_rejects_a_missing_cell(self, alpha):
        client = alpha.client()
        matrix = _matrix(client)
        del matrix["agente_tipo_3"]["llamada_tipo_2"]

        body = assert_problem(client.put("/config/conversion-matrix", {"matrix": matrix}), 400, "matrix_incomplete")

        assert any("llamada_tipo_2" in error["field"] for error in body["errors"])
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_rejects_a_missing_row(self, alpha):
        client = alpha.client()
        matrix = _matrix(client)
        del matrix["agente_tipo_4"]

        assert_problem(client.put("/config/conversion-matrix", {"matrix": matrix}), 400, "matrix_incomplete")

        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_rejects_an_unknown_agent_type(self, alpha):
        client = alpha.client()
        matrix = _matrix(client)
        matrix["agente_tipo_9"] = _rates(CALL_TYPES)

        response = client.put("/config/conversion-matrix", {"matrix": matrix})

        assert response.status_code == 400
        assert any("agente_tipo_9" in error["field"] for error in response.json()["errors"])
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_rejects_an_unknown_call_type(self, alpha):
        client = alpha.client()
        matrix = _matrix(client)
        matrix["agente_tipo_1"]["llamada_tipo_9"] = 0.5

        assert client.put("/config/conversion-matrix", {"matrix": matrix}).status_code == 400

        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_rejects_a_malformed_body(self, alpha):
        client = alpha.client()

        bodies: list[dict[str, Any]] = [{}, {"matrix": []}, {"matrix": {"agente_tipo_1": 0.3}}, {"rows": {}}]
        for body in bodies:
            assert_problem(client.put("/config/conversion-matrix", body), 400, "validation_error")

        assert _matrix(client) == REFERENCE_MATRIX


class AgentTypeApiTests:
    def test_it_lists_the_default_agent_types(self, alpha):
        assert _slugs(alpha.client(), "/agent-types") == AGENT_TYPES

    def test_it_creates_an_agent_type_with_its_matrix_row(self, alpha):
        client = alpha.client()

        response = client.post(
            "/agent-types",
            {
                "slug": "senior",
                "name": "Senior",
                "conversion_rates": {**_rates(CALL_TYPES, 0.4), "llamada_tipo_2": 0.9},
            },
        )

        assert response.status_code == 201, response.content
        assert (response.json()["slug"], response.json()["name"]) == ("senior", "Senior")
        assert _slugs(client, "/agent-types") == [*AGENT_TYPES, "senior"]
        assert client.get("/agent-types/senior").json()["name"] == "Senior"
        matrix = _matrix(client)
        assert matrix["senior"] == {**_rates(CALL_TYPES, 0.4), "llamada_tipo_2": 0.9}
        assert {agent_type: matrix[agent_type] for agent_type in AGENT_TYPES} == REFERENCE_MATRIX

    def test_it_puts_agents_of_a_new_type_to_work_at_once(self, alpha):
        client = alpha.client()
        assert (
            client.post(
                "/agent-types", {"slug": "senior", "name": "Senior", "conversion_rates": _rates(CALL_TYPES)}
            ).status_code
            == 201
        )
        agent = client.post("/agents", {"name": "Ana", "agent_type": "senior", "status": "AVAILABLE"}).json()

        call = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_3"})

        assert call.status_code == 201, call.content
        assert call.json()["agent_id"] == agent["id"]

    def test_it_rejects_an_incomplete_agent_type_and_creates_nothing(self, alpha):
        client = alpha.client()
        rates = _rates(CALL_TYPES)

        for body in (
            {"slug": "senior", "name": "Senior"},
            {"slug": "senior", "name": "Senior", "conversion_rates": {}},
            {"slug": "senior", "name": "Senior", "conversion_rates": _rates(CALL_TYPES[:3])},
            {"slug": "senior", "name": "Senior", "conversion_rates": {**rates, "llamada_tipo_9": 0.1}},
            {"slug": "senior", "name": "Senior", "conversion_rates": {**rates, "llamada_tipo_1": 1.5}},
            {"slug": "senior", "name": "Senior", "conversion_rates": {**rates, "llamada_tipo_1": True}},
            {"slug": "not a slug", "name": "Senior", "conversion_rates": rates},
            {"slug": "senior", "conversion_rates": rates},
            {"slug": "senior", "name": "Senior", "conversion_rates": rates, "colour": "red"},
        ):
            response = client.post("/agent-types", body)
            assert response.status_code == 400, (body, response.content)
            assert response["Content-Type"].startswith("application/problem+json")

        assert _slugs(client, "/agent-types") == AGENT_TYPES
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_refuses_a_duplicate_slug(self, alpha):
        client = alpha.client()

        response = client.post(
            "/agent-types", {"slug": "agente_tipo_1", "name": "Again", "conversion_rates": _rates(CALL_TYPES, 0.9)}
        )

        assert_problem(response, 409, "agent_type_exists")
        assert client.get("/agent-types/agente_tipo_1").json()["name"] != "Again"
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_renames_an_agent_type(self, alpha):
        client = alpha.client()

        response = client.patch("/agent-types/agente_tipo_2", {"name": "Second line"})

        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Second line"
        assert client.get("/agent-types/agente_tipo_2").json()["name"] == "Second line"
        assert_problem(client.patch("/agent-types/agente_tipo_2", {"slug": "x"}), 400, "validation_error")
        assert_problem(client.patch("/agent-types/agente_tipo_2", {"name": ""}), 400, "validation_error")

    def test_it_deletes_an_unused_agent_type(self, alpha):
        client = alpha.client()

        assert client.delete("/agent-types/agente_tipo_4").status_code == 204

        assert _slugs(client, "/agent-types") == AGENT_TYPES[:3]
        assert "agente_tipo_4" not in _matrix(client)
        assert_problem(client.get("/agent-types/agente_tipo_4"), 404, "agent_type_not_found")

    def test_it_keeps_the_last_agent_type(self, alpha):
        client = alpha.client()
        for slug in AGENT_TYPES[1:]:
            assert client.delete(f"/agent-types/{slug}").status_code == 204

        assert_problem(client.delete("/agent-types/agente_tipo_1"), 409, "last_type")

        assert _slugs(client, "/agent-types") == ["agente_tipo_1"]

    def test_it_refuses_to_delete_an_agent_type_in_use(self, alpha):
        client = alpha.client()
        assert client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_4"}).status_code == 201

        assert_problem(client.delete("/agent-types/agente_tipo_4"), 409, "agent_type_in_use")

        assert _slugs(client, "/agent-types") == AGENT_TYPES
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_answers_404_for_an_unknown_slug(self, alpha):
        client = alpha.client()

        assert_problem(client.get("/agent-types/nope"), 404, "agent_type_not_found")
        assert_problem(client.patch("/agent-types/nope", {"name": "x"}), 404, "agent_type_not_found")
        assert_problem(client.delete("/agent-types/nope"), 404, "agent_type_not_found")


class CallTypeApiTests:
    def test_it_lists_the_default_call_types(self, alpha):
        response = alpha.client().get("/call-types")

        assert [item["slug"] for item in response.json()["results"]] == CALL_TYPES
        assert {item["mix_weight"] for item in response.json()["results"]} == {0.25}

    def test_it_creates_a_call_type_with_its_matrix_column(self, alpha):
        client = alpha.client()
        rates = {**_rates(AGENT_TYPES, 0.3), "agente_tipo_3": 0.6}

        response = client.post("/call-types", {"slug": "retention", "name": "Retention", "conversion_rates": rates})

        assert response.status_code == 201, response.content
        assert (response.json()["slug"], response.json()["name"]) == ("retention", "Retention")
        assert _slugs(client, "/call-types") == [*CALL_TYPES, "retention"]
        matrix = _matrix(client)
        assert {agent_type: row["retention"] for agent_type, row in matrix.items()} == rates
        assert {a: {c: row[c] for c in CALL_TYPES} for a, row in matrix.items()} == REFERENCE_MATRIX
        assert "retention" in client.get("/config").json()["call_type_mix"]

    def test_it_takes_calls_of_a_new_type_at_once(self, alpha):
        client = alpha.client()
        assert (
            client.post(
                "/call-types", {"slug": "retention", "name": "Retention", "conversion_rates": _rates(AGENT_TYPES, 1.0)}
            ).status_code
            == 201
        )
        client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_2", "status": "AVAILABLE"})

        call = client.post("/calls", {"phone_number": "+34600123456", "call_type": "retention"})
        assert call.status_code == 201, call.content
        done = client.post(f"/calls/{call.json()['id']}/complete", {})

        assert done.status_code == 200, done.content
        assert done.json()["outcome"] == "OK"

    def test_it_rejects_an_incomplete_call_type_and_creates_nothing(self, alpha):
        client = alpha.client()
        rates = _rates(AGENT_TYPES)

        for body in (
            {"slug": "retention", "name": "Retention"},
            {"slug": "retention", "name": "Retention", "conversion_rates": _rates(AGENT_TYPES[1:])},
            {"slug": "retention", "name": "Retention", "conversion_rates": {**rates, "agente_tipo_9": 0.2}},
            {"slug": "retention", "name": "Retention", "conversion_rates": {**rates, "agente_tipo_2": -0.1}},
            {"slug": "retention", "name": "Retention", "mix_weight": -1, "conversion_rates": rates},
            {"slug": "retention", "name": "Retention", "mix_weight": True, "conversion_rates": rates},
        ):
            response = client.post("/call-types", body)
            assert response.status_code == 400, (body, response.content)

        assert _slugs(client, "/call-types") == CALL_TYPES
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_refuses_a_duplicate_slug(self, alpha):
        client = alpha.client()

        response = client.post(
            "/call-types", {"slug": "llamada_tipo_2", "name": "Again", "conversion_rates": _rates(AGENT_TYPES)}
        )

        assert_problem(response, 409, "call_type_exists")
        assert _matrix(client) == REFERENCE_MATRIX

    def test_it_renames_a_call_type(self, alpha):
        client = alpha.client()

        response = client.patch("/call-types/llamada_tipo_3", {"name": "Upsell"})

        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Upsell"
        assert client.get("/call-types/llamada_tipo_3").json()["name"] == "Upsell"

    def test_it_deletes_an_unused_call_type(self, alpha):
        client = alpha.client()

        assert client.delete("/call-types/llamada_tipo_4").status_code == 204

        assert _slugs(client, "/call-types") == CALL_TYPES[:3]
        assert all("llamada_tipo_4" not in row for row in _matrix(client).values())
        assert "llamada_tipo_4" not in client.get("/config").json()["call_type_mix"]
        assert_problem(
            client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_4"}),
            400,
            "unknown_call_type",
        )

    def test_it_refuses_to_delete_a_call_type_in_use(self, alpha):
        client = alpha.client()
        assert client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_4"}).status_code == 202

        assert_problem(client.delete("/call-types/llamada_tipo_4"), 409, "call_type_in_use")

        assert _slugs(client, "/call-types") == CALL_TYPES

    def test_it_answers_404_for_an_unknown_slug(self, alpha):
        client = alpha.client()

        assert_problem(client.get("/call-types/nope"), 404, "call_type_not_found")
        assert_problem(client.patch("/call-types/nope", {"name": "x"}), 404, "call_type_not_found")
        assert_problem(client.delete("/call-types/nope"), 404, "call_type_not_found")
