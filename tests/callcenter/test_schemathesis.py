"""Schemathesis over every operation of the tenant API, with a valid API key, against gunicorn.

Every check schemathesis has runs (server errors, status codes, content types, response bodies
and headers against the document, valid input accepted, invalid input refused, authentication
really enforced, ...), in all four phases (the document's examples, coverage, fuzzing, stateful),
with a bounded number of examples, deterministic generation and no state kept between runs:
``tests/callcenter/schemathesis.toml``. Three checks are narrowed to one documented answer each by
``tests/callcenter/schemathesis_hooks.py`` (see its docstring).

To run the same by hand against ``make run``::

    CALLCENTER_API_KEY=<key> .venv/bin/schemathesis --config-file tests/callcenter/schemathesis.toml \\
        run http://localhost:8000/schema
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from django.test import Client

from audit.services import Actor
from tenants.services import apikey_create
from tests.callcenter import schemathesis_hooks as hooks
from tests.conftest import BASE_DIR
from tests.helpers import ApiClient, assert_problem

CONFIG = BASE_DIR / "tests" / "callcenter" / "schemathesis.toml"
# Not a timing assertion: only a bound on a hung run, far above what it takes on a loaded machine.
RUN_TIMEOUT_SECONDS = 600


def _operations(schema: dict[str, Any], *, public: bool | None = None) -> list[str]:
    """``METHOD /path`` of every operation; only the public ones (no security) or only the others."""
    return [
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
        and (public is None or (operation["security"] == []) == public)
    ]


# A value for each path parameter: the request must reach the operation's own view.
PATH_VALUES = {
    "{agent_id}": "00000000-0000-4000-8000-000000000000",
    "{call_id}": "00000000-0000-4000-8000-000000000000",
    "{slug}": "agente_tipo_1",
    "{entry_id}": "1",
    "{endpoint_id}": "00000000-0000-4000-8000-000000000000",
    "{message_id}": "00000000-0000-4000-8000-000000000000",
}


def _concrete(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    assert "{" not in path, path
    return path


def _run_schemathesis(url: str, api_key: str, report: Path) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env.update(CALLCENTER_API_KEY=api_key, NO_COLOR="1", COLUMNS="120")
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/schema",
               "--report", "json", "--report-json-path", str(report)]  # fmt: skip
    return subprocess.run(
        command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )


class SchemathesisTests:
    def test_every_operation_keeps_to_the_document(self, alpha, web_server, tmp_path) -> None:
        reply = web_server.request("GET", "/schema")
        assert reply.status == 200
        operations = _operations(yaml.safe_load(reply.body))
        assert len(operations) >= 30, operations

        report_path = tmp_path / "schemathesis.json"
        result = _run_schemathesis(f"http://127.0.0.1:{web_server.port}", alpha.api_key, report_path)

        output = (result.stdout + result.stderr)[-12_000:]
        assert result.returncode == 0, output
        report = json.loads(report_path.read_text())
        assert report["complete"] and report["stop_reason"] == "completed", output
        assert report["operations"]["tested"] == len(operations) == report["operations"]["total"], report["operations"]
        assert report["failures"] == [] and report["errors"] == [], output
        assert report["test_cases"]["generated"] > 20 * len(operations), report["test_cases"]
        # The key was sent (a run whose auth went unused would prove little about the API).
        assert report["warnings"]["missing_auth"] == [] and report["warnings"]["unused_openapi_auth"] == [], output
        assert all(phase["status"] == "success" for phase in report["phases"].values()), report["phases"]


class AuthenticationTests:
    """What schemathesis' ignored_auth probes, for every operation of the document and every way
    of sending no valid key (schemathesis stops probing an operation once it refused one)."""

    def test_every_operation_declares_the_key_and_refuses_a_missing_or_bad_one(self, alpha) -> None:
        schema = yaml.safe_load(Client().get("/schema", HTTP_HOST="localhost").content)
        schemes = schema["components"]["securitySchemes"]
        assert schemes["ApiKeyBearer"] == {**schemes["ApiKeyBearer"], "type": "http", "scheme": "bearer"}
        assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header"}
        assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
        reader = apikey_create(tenant=alpha.tenant, name="reader", scope="read", actor=Actor.system("test")).raw_key
        operations = _operations(schema, public=False)
        assert len(operations) >= 30
        for operation in operations:
            method, _, path = operation.partition(" ")
            declared = schema["paths"][path][method.lower()]["security"]
            assert {"ApiKeyBearer": []} in declared and {"ApiKeyHeader": []} in declared, operation
            assert {} not in declared, f"{operation} says it needs no key"
            body: dict[str, Any] | None = None if method in ("GET", "DELETE") else {}
            url = _concrete(path)
            refusals = [
                (ApiClient(key=None), 401, "tenant_required"),  # no key, on the public host
                (ApiClient(key=None, host="alpha.localhost"), 401, "not_authenticated"),  # no key, tenant's host
                (ApiClient(key="cc_00000000_not-a-key"), 401, "invalid_api_key"),
                (ApiClient(key=f"{alpha.api_key}x"), 401, "invalid_api_key"),
            ]
            for client, status, code in refusals:
                response = client.request(method, url, body)
                assert_problem(response, status, code)
                assert response["WWW-Authenticate"].startswith("Bearer"), operation
            response = ApiClient(key=None).request(method, url, body, headers={"X-API-Key": "cc_00000000_x"})
            assert_problem(response, 401, "invalid_api_key")
            if method != "GET":
                assert_problem(ApiClient(key=reader).request(method, url, body), 403, "permission_denied")


class PublicEndpointTests:
    def test_only_the_health_checks_are_public_and_they_need_no_key(self) -> None:
        schema = yaml.safe_load(Client().get("/schema", HTTP_HOST="localhost").content)

        assert _operations(schema, public=True) == ["GET /health", "GET /health/live"]
        for path in ("/health", "/health/live"):
            assert ApiClient(key=None).get(path).status_code == 200, path
            response = ApiClient(key=None).post(path, {})
            assert_problem(response, 405, "method_not_allowed")
            assert response["Allow"] == "GET, HEAD"


def _response(status: int, body: Any, *, content_type: str = "application/problem+json", **headers: str) -> Any:
    return SimpleNamespace(
        status_code=status,
        content=json.dumps(body).encode(),
        headers={"content-type": [content_type], **{name.lower(): [value] for name, value in headers.items()}},
    )


def _case(method: str, path: str) -> Any:
    return SimpleNamespace(method=method, operation=SimpleNamespace(path=path))


class SchemathesisHookTests:
    """The narrowed checks let through only the answers they name."""

    def test_a_rule_on_the_tenant_s_own_data_is_not_a_rejected_valid_request(self) -> None:
        unknown_type = {"code": "validation_error", "errors": [{"field": "agent_type", "code": "unknown_agent_type"}]}
        assert hooks._rule_beyond_the_document(_response(400, unknown_type), _case("POST", "/agents"))
        assert hooks._rule_beyond_the_document(_response(400, {"code": "matrix_incomplete"}), _case("POST", "/x"))
        bounds = {"code": "validation_error", "errors": [{"field": "duration_max_seconds", "code": "invalid"}]}
        assert hooks._rule_beyond_the_document(_response(400, bounds), _case("PUT", "/config"))

    def test_any_other_refusal_still_is(self) -> None:
        unknown_field = {"code": "validation_error", "errors": [{"field": "x", "code": "unknown_field"}]}
        assert not hooks._rule_beyond_the_document(_response(400, unknown_field), _case("POST", "/agents"))
        mixed = {"code": "validation_error", "errors": [
            {"field": "agent_type", "code": "unknown_agent_type"}, {"field": "name", "code": "blank"}
        ]}  # fmt: skip
        assert not hooks._rule_beyond_the_document(_response(400, mixed), _case("POST", "/agents"))
        bounds = {"code": "validation_error", "errors": [{"field": "duration_max_seconds", "code": "invalid"}]}
        assert not hooks._rule_beyond_the_document(_response(400, bounds), _case("POST", "/agents"))
        assert not hooks._rule_beyond_the_document(_response(409, {"code": "matrix_incomplete"}), _case("POST", "/x"))
        as_json = _response(400, {"code": "matrix_incomplete"}, content_type="application/json")
        assert not hooks._rule_beyond_the_document(as_json, _case("POST", "/x"))

    def test_only_a_saturated_call_is_a_promised_503(self) -> None:
        saturated = _response(503, {"status": "SATURATED"}, content_type="application/json", **{"Retry-After": "5"})
        assert hooks._saturated(saturated, _case("POST", "/calls"))
        assert not hooks._saturated(saturated, _case("POST", "/agents"))
        no_retry_after = _response(503, {"status": "SATURATED"}, content_type="application/json")
        assert not hooks._saturated(no_retry_after, _case("POST", "/calls"))
        engine_down = _response(503, {"code": "engine_unavailable"}, **{"Retry-After": "1"})
        assert not hooks._saturated(engine_down, _case("POST", "/calls"))
        server_error = _response(500, {"status": "SATURATED"}, content_type="application/json", **{"Retry-After": "5"})
        assert not hooks._saturated(server_error, _case("POST", "/calls"))

    def test_only_an_ended_call_stays_readable_after_its_delete(self) -> None:
        cancelled = _response(200, {"status": "CANCELLED"}, content_type="application/json")
        assert hooks._ended_call(cancelled, _case("GET", "/calls/{call_id}"))
        assert not hooks._ended_call(cancelled, _case("GET", "/agents/{agent_id}"))
        active = _response(200, {"status": "ASSIGNED"}, content_type="application/json")
        assert not hooks._ended_call(active, _case("GET", "/calls/{call_id}"))
