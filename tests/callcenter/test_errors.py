"""Every error is an RFC 9457 problem document; the public endpoints answer without credentials."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import Agent
from callcenter.problems import PROBLEMS
from tests.helpers import ApiClient, assert_problem

BASE_DIR = Path(__file__).resolve().parents[2]
AGENT = {"name": "Ana", "agent_type": "agente_tipo_1"}


def _problem(response, status: int, code: str) -> dict:
    body = assert_problem(response, status, code)
    assert response["Content-Type"] == "application/problem+json"
    assert body["instance"] == response.wsgi_request.path
    assert body["type"] == f"/problems#{code}" and code in PROBLEMS
    assert response["X-Request-ID"] and body["request_id"] == response["X-Request-ID"]
    return body


def _agent_count(schema_name: str) -> int:
    with schema_context(schema_name):
        return Agent.objects.count()


class ProblemDetailsTests:
    def test_it_answers_an_unknown_path_with_not_found(self, alpha):
        _problem(alpha.client().get("/no/such/thing"), 404, "not_found")
        _problem(ApiClient(key=None, host="alpha.localhost").get("/no/such/thing"), 404, "not_found")

    def test_it_answers_an_unknown_id_with_not_found(self, alpha):
        _problem(alpha.client().get(f"/agents/{uuid.uuid4()}"), 404, "agent_not_found")
        _problem(alpha.client().get("/agents/not-a-uuid"), 404, "not_found")

    def test_it_answers_a_wrong_method_with_method_not_allowed(self, alpha):
        body = _problem(alpha.client().put("/agents", AGENT), 405, "method_not_allowed")

        assert "PUT" in body["detail"]
        assert _agent_count(alpha.schema_name) == 0

    def test_it_answers_malformed_json_with_malformed_json(self, alpha):
        for raw in ('{"name": "Ana",', "{'name': 'Ana'}", "nul", "{}x"):
            _problem(alpha.client().post("/agents", raw=raw), 400, "malformed_json")

        assert _agent_count(alpha.schema_name) == 0

    def test_it_refuses_a_body_that_is_not_an_object(self, alpha, subtests):
        for raw in ("[]", '[{"name": "Ana", "agent_type": "agente_tipo_1"}]', '"Ana"', "42", "null", "true"):
            with subtests.test(body=raw):
                body = _problem(alpha.client().post("/agents", raw=raw), 400, "validation_error")

                assert body["errors"], body
        assert _agent_count(alpha.schema_name) == 0

    def test_it_names_each_unknown_field(self, alpha):
        body = _problem(alpha.client().post("/agents", {**AGENT, "colour": "red", "age": 3}), 400, "validation_error")

        assert {(e["field"], e["code"]) for e in body["errors"]} == {
            ("age", "unknown_field"),
            ("colour", "unknown_field"),
        }
        assert all(e["message"] for e in body["errors"])
        assert "colour" in body["detail"]
        assert _agent_count(alpha.schema_name) == 0

    def test_it_names_each_invalid_field(self, alpha):
        body = _problem(
            alpha.client().post("/agents", {"name": "", "agent_type": "no_such_type"}), 400, "validation_error"
        )

        assert {e["field"] for e in body["errors"]} >= {"name"}
        assert _agent_count(alpha.schema_name) == 0

    def test_it_refuses_a_body_that_is_not_json(self, alpha):
        client = alpha.client()

        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            response = client.client.post("/agents", data="name=Ana", content_type=content_type, headers=client.headers)

            _problem(response, 415, "unsupported_media_type")
        assert _agent_count(alpha.schema_name) == 0

    def test_it_refuses_a_body_larger_than_the_limit(self, alpha):
        padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

        response = alpha.client().post("/agents", {**AGENT, "name": padding})

        _problem(response, 413, "payload_too_large")
        assert _agent_count(alpha.schema_name) == 0
        assert alpha.client().post("/agents", AGENT).status_code == 201  # the next request is unaffected

    def test_it_refuses_a_large_form_body_outside_the_api(self, alpha):
        browser = Client(HTTP_HOST="alpha.localhost")

        response = browser.post(
            "/admin/login/", data="a=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
            content_type="application/x-www-form-urlencoded",
        )  # fmt: skip

        _problem(response, 413, "payload_too_large")

    def test_it_keeps_a_request_id_on_every_response(self, alpha):
        client = alpha.client()
        responses = [
            client.post("/agents", AGENT),
            client.get("/agents"),
            client.get("/nope"),
            client.post("/agents", raw="{"),
            ApiClient(key="cc_bad_key").get("/agents"),
            ApiClient(key=None).get("/agents"),
            Client(HTTP_HOST="localhost").get("/docs"),
        ]

        ids = [response["X-Request-ID"] for response in responses]
        assert all(ids), ids
        assert len(set(ids)) == len(ids)  # a fresh one per request

    def test_it_echoes_a_well_formed_incoming_request_id(self, alpha):
        echoed = alpha.client().get("/agents", headers={"X-Request-ID": "trace-42.a_b"})
        replaced = alpha.client().get("/agents", headers={"X-Request-ID": "bad id\twith spaces"})

        assert echoed["X-Request-ID"] == "trace-42.a_b"
        assert replaced["X-Request-ID"] != "bad id\twith spaces"
        assert len(replaced["X-Request-ID"]) == 32


class PublicEndpointsTests:
    @pytest.fixture
    def public(self, alpha) -> Client:
        return Client(HTTP_HOST="localhost")

    def test_it_serves_the_openapi_document_without_auth(self, public):
        as_yaml = public.get("/schema")
        as_json = public.get("/schema?format=json")

        assert as_yaml.status_code == 200 and as_json.status_code == 200
        assert as_yaml["X-Request-ID"]
        document = yaml.safe_load(as_yaml.content)
        assert document == json.loads(as_json.content)
        assert document["openapi"].startswith("3.")
        assert document["info"]["title"] == "Callcenter API"
        paths = document["paths"]
        assert {"/agents", "/calls", "/calls/{call_id}/complete", "/config/conversion-matrix"} <= set(paths)
        assert {"post", "get"} <= set(paths["/agents"]) and {"post", "get"} <= set(paths["/calls"])
        assert {"get", "put"} <= set(paths["/config/conversion-matrix"])

    def test_it_documents_each_operation_s_own_request_body(self, public):
        document = public.get("/schema?format=json").json()

        def body_fields(path: str, method: str) -> set[str]:
            ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            return set(document["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])

        assert body_fields("/agents", "post") == {"name", "agent_type", "status"}
        assert body_fields("/calls", "post") >= {"phone_number", "call_type", "priority"}
        assert body_fields("/calls/{call_id}/complete", "post") == {"outcome"}
        assert body_fields("/agent-types", "post") >= {"slug", "name", "conversion_rates"}

    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    def test_it_serves_the_api_docs_without_auth(self, public, path):
        response = public.get(path)

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert "/schema" in response.content.decode()
        assert response["X-Request-ID"]

    def test_it_serves_the_api_docs_on_a_tenant_host_too(self, alpha):
        assert Client(HTTP_HOST="alpha.localhost").get("/schema").status_code == 200

    @pytest.mark.worker
    def test_it_reports_health_without_auth(self, public, celery_worker):
        response = public.get("/health")

        assert response.status_code == 200, response.content
        body = response.json()
        # No beat runs in the tests: the web is ready, the answer says what is missing.
        assert body["status"] == "degraded" and body["down"] == ["beat"]
        assert {name: check["status"] for name, check in body["checks"].items()} == {
            "database": "up",
            "redis": "up",
            "workers": "up",
            "beat": "down",
        }
        assert body["checks"]["workers"]["count"] == 1
        assert response["X-Request-ID"]

    def test_it_reports_missing_workers_as_degraded_not_down(self, public):
        from assignment import engine, keys

        engine.client().delete(keys.HEARTBEATS)  # a worker killed by an earlier test left its beat

        response = public.get("/health")

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "degraded" and body["down"] == ["workers", "beat"]
        assert body["checks"]["database"]["status"] == "up" and body["checks"]["redis"]["status"] == "up"
        assert body["checks"]["workers"] == {"status": "down", "count": 0, "error": "no heartbeat in the last 15 s"}
