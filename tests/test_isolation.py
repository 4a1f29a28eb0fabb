"""Tenant isolation through the API (SPEC §5): a key of one tenant never sees, changes or learns
about another tenant's data. Foreign ids answer 404, exactly like ids that do not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern

from callcenter.urls import api_urlpatterns
from tests.helpers import assert_problem

CALL_TYPES = ["llamada_tipo_1", "llamada_tipo_2", "llamada_tipo_3", "llamada_tipo_4"]
AGENT_TYPES = ["agente_tipo_1", "agente_tipo_2", "agente_tipo_3", "agente_tipo_4"]


@dataclass
class AlphaWorld:
    """Objects of tenant alpha, each in a state where the operation under test would succeed."""

    busy_agent: str  # holds `active_call`
    offline_agent: str
    active_call: str  # ASSIGNED
    waiting_call: str  # QUEUED
    agent_type: str  # exists only in alpha, unused
    call_type: str  # exists only in alpha, unused
    audit_entry: int  # alpha's latest audit entry (beta, fresh, has none)
    webhook: str  # an endpoint of alpha's
    webhook_message: str  # a message to it

    def path(self, template: str) -> str:
        return template.format(**self.__dict__)


def _alpha_world(client: Any) -> AlphaWorld:
    def ok(response: Any, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.content
        return response.json()

    ok(
        client.post(
            "/agent-types", {"slug": "alpha_only", "name": "Alpha", "conversion_rates": dict.fromkeys(CALL_TYPES, 0.5)}
        ),
        201,
    )
    ok(
        client.post(
            "/call-types",
            {
                "slug": "alpha_calls",
                "name": "Alpha",
                "conversion_rates": dict.fromkeys([*AGENT_TYPES, "alpha_only"], 0.5),
            },
        ),
        201,
    )
    busy = ok(client.post("/agents", {"name": "Busy", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}), 201)
    offline = ok(client.post("/agents", {"name": "Off", "agent_type": "agente_tipo_2"}), 201)
    active = ok(
        client.post(
            "/calls",
            {"phone_number": "+34600000001", "call_type": "llamada_tipo_1", "external_id": "ext-1"},
            headers={"Idempotency-Key": "key-1"},
        ),
        201,
    )
    waiting = ok(client.post("/calls", {"phone_number": "+34600000002", "call_type": "llamada_tipo_2"}), 202)
    webhook = ok(client.post("/webhooks", {"url": "http://127.0.0.1:9/alpha-hook"}), 201)
    message = ok(client.post(f"/webhooks/{webhook['id']}/test"), 202)
    return AlphaWorld(
        busy_agent=busy["id"],
        offline_agent=offline["id"],
        active_call=active["id"],
        waiting_call=waiting["id"],
        agent_type="alpha_only",
        call_type="alpha_calls",
        audit_entry=ok(client.get("/audit"), 200)["results"][0]["id"],
        webhook=webhook["id"],
        webhook_message=message["id"],
    )


@pytest.fixture(autouse=True)
def _webhooks_to_loopback(settings: Any) -> None:
    """Webhook endpoints here point at 127.0.0.1 (nothing is delivered: no tick runs)."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def _snapshot(client: Any) -> dict[str, Any]:
    """Everything alpha's API shows (volatile timestamps included: nothing may change them)."""
    paths = [
        "/agents",
        "/agents/available",
        "/calls",
        "/config",
        "/config/conversion-matrix",
        "/agent-types",
        "/call-types",
        "/webhooks",
    ]
    snapshot = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        snapshot[path] = response.json()
    for call in snapshot["/calls"]["results"]:
        snapshot[f"/calls/{call['id']}"] = client.get(f"/calls/{call['id']}").json()
    for webhook in snapshot["/webhooks"]["results"]:
        snapshot[f"/webhooks/{webhook['id']}/messages"] = client.get(f"/webhooks/{webhook['id']}/messages").json()
    return snapshot


# Every operation on one object of api_urlpatterns, aimed by beta's key at alpha's object.
FOREIGN_OPERATIONS = [
    ("GET", "agents/<uuid:agent_id>", "/agents/{offline_agent}", None, "agent_not_found"),
    ("PATCH", "agents/<uuid:agent_id>", "/agents/{offline_agent}", {"name": "Stolen"}, "agent_not_found"),
    ("PATCH", "agents/<uuid:agent_id>", "/agents/{offline_agent}", {"agent_type": "agente_tipo_3"}, "agent_not_found"),
    ("DELETE", "agents/<uuid:agent_id>", "/agents/{offline_agent}", None, "agent_not_found"),
    ("DELETE", "agents/<uuid:agent_id>", "/agents/{busy_agent}", None, "agent_not_found"),
    (
        "PUT",
        "agents/<uuid:agent_id>/status",
        "/agents/{offline_agent}/status",
        {"status": "AVAILABLE"},
        "agent_not_found",
    ),
    (
        "PUT",
        "agents/<uuid:agent_id>/status",
        "/agents/{busy_agent}/status",
        {"status": "OFFLINE", "force": True},
        "agent_not_found",
    ),
    ("GET", "calls/<uuid:call_id>", "/calls/{active_call}", None, "call_not_found"),
    ("DELETE", "calls/<uuid:call_id>", "/calls/{active_call}", None, "call_not_found"),
    ("DELETE", "calls/<uuid:call_id>", "/calls/{waiting_call}", None, "call_not_found"),
    ("POST", "calls/<uuid:call_id>/complete", "/calls/{active_call}/complete", {"outcome": "OK"}, "call_not_found"),
    ("POST", "calls/<uuid:call_id>/complete", "/calls/{active_call}/complete", {}, "call_not_found"),
    ("GET", "agent-types/<slug:slug>", "/agent-types/{agent_type}", None, "agent_type_not_found"),
    ("PATCH", "agent-types/<slug:slug>", "/agent-types/{agent_type}", {"name": "Stolen"}, "agent_type_not_found"),
    ("DELETE", "agent-types/<slug:slug>", "/agent-types/{agent_type}", None, "agent_type_not_found"),
    ("GET", "call-types/<slug:slug>", "/call-types/{call_type}", None, "call_type_not_found"),
    ("PATCH", "call-types/<slug:slug>", "/call-types/{call_type}", {"name": "Stolen"}, "call_type_not_found"),
    ("DELETE", "call-types/<slug:slug>", "/call-types/{call_type}", None, "call_type_not_found"),
    ("GET", "audit/<int:entry_id>", "/audit/{audit_entry}", None, "audit_entry_not_found"),
    ("GET", "webhooks/<uuid:endpoint_id>", "/webhooks/{webhook}", None, "webhook_not_found"),
    ("PATCH", "webhooks/<uuid:endpoint_id>", "/webhooks/{webhook}", {"enabled": False}, "webhook_not_found"),
    ("DELETE", "webhooks/<uuid:endpoint_id>", "/webhooks/{webhook}", None, "webhook_not_found"),
    (
        "POST",
        "webhooks/<uuid:endpoint_id>/rotate-secret",
        "/webhooks/{webhook}/rotate-secret",
        None,
        "webhook_not_found",
    ),
    ("POST", "webhooks/<uuid:endpoint_id>/test", "/webhooks/{webhook}/test", None, "webhook_not_found"),
    ("GET", "webhooks/<uuid:endpoint_id>/messages", "/webhooks/{webhook}/messages", None, "webhook_not_found"),
    ("GET", "webhooks/<uuid:endpoint_id>/deliveries", "/webhooks/{webhook}/deliveries", None, "webhook_not_found"),
    (
        "GET",
        "webhooks/<uuid:endpoint_id>/messages/<uuid:message_id>",
        "/webhooks/{webhook}/messages/{webhook_message}",
        None,
        "webhook_not_found",
    ),
    (
        "POST",
        "webhooks/<uuid:endpoint_id>/messages/<uuid:message_id>/redeliver",
        "/webhooks/{webhook}/messages/{webhook_message}/redeliver",
        None,
        "webhook_not_found",
    ),
]

# Every collection of api_urlpatterns, read with beta's key: "what" names the rows alpha has there.
FOREIGN_LISTS = [
    ("agents", "/agents", "agents"),
    ("agents", "/agents?status=AVAILABLE", "agents"),
    ("agents", "/agents?agent_type=alpha_only", "agents"),
    ("agents/available", "/agents/available", "agents"),
    ("calls", "/calls", "calls"),
    ("calls", "/calls?agent_id={busy_agent}", "calls"),
    ("calls", "/calls?status=QUEUED", "calls"),
    ("agent-types", "/agent-types", "agent_types"),
    ("call-types", "/call-types", "call_types"),
    ("config", "/config", "config"),
    ("config/conversion-matrix", "/config/conversion-matrix", "matrix"),
    ("system/status", "/system/status", "status"),
    ("system/metrics", "/system/metrics", "metrics"),
    ("audit", "/audit", "audit"),
    ("webhooks", "/webhooks", "webhooks"),
]


# Every write to a collection of api_urlpatterns, made by beta with its own key: it succeeds in
# beta and leaves alpha untouched.
BETA_WRITES = [
    ("POST", "agents", "/agents", {"name": "Bea", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}, 201),
    ("POST", "calls", "/calls", {"phone_number": "+34600000009", "call_type": "llamada_tipo_1"}, 202),
    ("PUT", "config", "/config", {"strategy": "round_robin", "max_queue_length": 0, "wrap_up_seconds": 3}, 200),
    (
        "PUT",
        "config/conversion-matrix",
        "/config/conversion-matrix",
        {"matrix": {agent: dict.fromkeys(CALL_TYPES, 0.99) for agent in AGENT_TYPES}},
        200,
    ),
    (
        "POST",
        "agent-types",
        "/agent-types",
        {"slug": "beta_only", "name": "B", "conversion_rates": dict.fromkeys(CALL_TYPES, 0.1)},
        201,
    ),
    (
        "POST",
        "call-types",
        "/call-types",
        {"slug": "beta_calls", "name": "B", "conversion_rates": dict.fromkeys(AGENT_TYPES, 0.1)},
        201,
    ),
    ("POST", "webhooks", "/webhooks", {"url": "http://127.0.0.1:9/beta-hook"}, 201),
]


def _endpoints() -> set[tuple[str, str]]:
    """(method, route) of every operation that api_urlpatterns serves."""
    endpoints = set()
    for pattern in api_urlpatterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in view.http_method_names:
            if method not in ("options", "head") and hasattr(view, method):
                endpoints.add((method.upper(), str(pattern.pattern)))
    return endpoints


def _call(client: Any, method: str, path: str, body: Any) -> Any:
    return client.request(method, path, body)


class TenantIsolationTests:
    def test_it_covers_every_api_endpoint(self):
        covered = {(method, route) for method, route, *_ in [*FOREIGN_OPERATIONS, *BETA_WRITES]}
        covered |= {("GET", route) for route, *_ in FOREIGN_LISTS}

        assert covered == _endpoints()

    @pytest.mark.parametrize(
        ("method", "route", "template", "body", "code"),
        FOREIGN_OPERATIONS,
        ids=[
            f"{method} {template}" + (f" {body}" if body else "") for method, _, template, body, _ in FOREIGN_OPERATIONS
        ],
    )
    def test_it_answers_404_for_another_tenants_object(self, alpha, beta, method, route, template, body, code):
        world = _alpha_world(alpha.client())
        before = _snapshot(alpha.client())

        response = _call(beta.client(), method, world.path(template), body)

        assert_problem(response, 404, code)
        assert _snapshot(alpha.client()) == before

    def test_it_answers_a_foreign_id_exactly_like_a_missing_one(self, alpha, beta):
        world = _alpha_world(alpha.client())
        client = beta.client()

        pairs = [
            (f"/agents/{world.offline_agent}", f"/agents/{uuid.uuid4()}"),
            (f"/calls/{world.active_call}", f"/calls/{uuid.uuid4()}"),
            (f"/agent-types/{world.agent_type}", "/agent-types/nothing_here"),
            (f"/call-types/{world.call_type}", "/call-types/nothing_here"),
            (f"/webhooks/{world.webhook}", f"/webhooks/{uuid.uuid4()}"),
        ]

        for foreign_path, missing_path in pairs:
            foreign, missing = client.get(foreign_path), client.get(missing_path)
            assert (foreign.status_code, missing.status_code) == (404, 404)
            foreign_body, missing_body = foreign.json(), missing.json()
            for body in (foreign_body, missing_body):
                body.pop("instance", None)
                body.pop("request_id", None)  # differs per request by design
            assert foreign_body == missing_body, foreign_path

    @pytest.mark.parametrize(("route", "template", "what"), FOREIGN_LISTS, ids=[t for _, t, _ in FOREIGN_LISTS])
    def test_it_lists_none_of_another_tenants_rows(self, alpha, beta, route, template, what):
        world = _alpha_world(alpha.client())
        before = _snapshot(alpha.client())

        response = beta.client().get(world.path(template))

        assert response.status_code == 200, response.content
        body = response.json()
        text = response.content.decode()
        for alpha_value in (
            world.busy_agent,
            world.offline_agent,
            world.active_call,
            world.waiting_call,
            "alpha_only",
            "alpha_calls",
            world.webhook,
            "alpha-hook",
        ):
            assert alpha_value not in text
        if what in ("agents", "calls", "audit", "webhooks"):
            assert body["results"] == [] and body.get("count", 0) == 0
        elif what == "agent_types":
            assert [item["slug"] for item in body["results"]] == AGENT_TYPES
        elif what == "call_types":
            assert [item["slug"] for item in body["results"]] == CALL_TYPES
        elif what == "config":
            assert sorted(body["call_type_mix"]) == CALL_TYPES
        elif what == "status":
            assert body["tenant"] == "beta" and body["agents_total"] == 0 and body["active_calls"] == 0
        elif what == "metrics":
            assert body["tenant"] == "beta" and body["calls_total"] == 0 and body["assignment_time_ms"]["samples"] == 0
        else:
            assert sorted(body["matrix"]) == AGENT_TYPES
        assert _snapshot(alpha.client()) == before

    @pytest.mark.parametrize(
        ("method", "route", "path", "body", "status"), BETA_WRITES, ids=[f"{m} {p}" for m, _, p, _, _ in BETA_WRITES]
    )
    def test_it_keeps_a_write_to_its_own_tenant(self, alpha, beta, method, route, path, body, status):
        _alpha_world(alpha.client())
        before = _snapshot(alpha.client())
        beta_before = _snapshot(beta.client())

        response = _call(beta.client(), method, path, body)

        assert response.status_code == status, response.content
        assert _snapshot(beta.client()) != beta_before
        assert _snapshot(alpha.client()) == before

    def test_it_never_hands_a_call_to_another_tenants_agent(self, alpha, beta):
        alpha_client = alpha.client()
        agent = alpha_client.post(
            "/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}
        ).json()

        response = beta.client().post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})

        assert response.status_code == 202, response.content
        assert response.json()["agent_id"] is None
        assert alpha_client.get(f"/agents/{agent['id']}").json()["status"] == "AVAILABLE"
        assert alpha_client.get("/calls").json()["results"] == []

    def test_it_never_gives_another_tenants_waiting_call_to_an_agent(self, alpha, beta):
        waiting = alpha.client().post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}).json()

        agent = beta.client().post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "status": "AVAILABLE"})

        assert agent.status_code == 201
        assert agent.json()["status"] == "AVAILABLE"
        assert alpha.client().get(f"/calls/{waiting['id']}").json()["status"] == "QUEUED"
        assert alpha.client().get("/agents").json()["count"] == 0

    def test_it_does_not_replay_another_tenants_idempotency_key_or_external_id(self, alpha, beta):
        world = _alpha_world(alpha.client())
        before = _snapshot(alpha.client())
        body = {"phone_number": "+34600000001", "call_type": "llamada_tipo_1", "external_id": "ext-1"}

        response = beta.client().post("/calls", body, headers={"Idempotency-Key": "key-1"})
        different = beta.client().post("/calls", {**body, "external_id": "ext-2"}, headers={"Idempotency-Key": "key-1"})

        assert response.status_code == 202, response.content
        assert response.json()["id"] != world.active_call
        assert "Idempotent-Replayed" not in response
        assert_problem(different, 422, "idempotency_key_reused")
        assert _snapshot(alpha.client()) == before

    def test_it_refuses_another_tenants_types_when_creating(self, alpha, beta):
        _alpha_world(alpha.client())
        client = beta.client()

        agent = client.post("/agents", {"name": "Ana", "agent_type": "alpha_only"})
        call = client.post("/calls", {"phone_number": "+34600123456", "call_type": "alpha_calls"})

        assert_problem(agent, 400, "validation_error")
        assert_problem(call, 400, "unknown_call_type")
        assert client.get("/agents").json()["count"] == 0
        assert client.get("/calls").json()["results"] == []

    def test_it_creates_same_named_types_independently(self, alpha, beta):
        _alpha_world(alpha.client())
        before = _snapshot(alpha.client())

        response = beta.client().post(
            "/agent-types",
            {"slug": "alpha_only", "name": "Beta's own", "conversion_rates": dict.fromkeys(CALL_TYPES, 0.9)},
        )

        assert response.status_code == 201, response.content
        assert _snapshot(alpha.client()) == before
        assert alpha.client().get("/agent-types/alpha_only").json()["name"] == "Alpha"

    def test_it_keeps_configuration_changes_to_their_tenant(self, alpha, beta):
        before = _snapshot(alpha.client())
        client = beta.client()
        matrix = {agent: dict.fromkeys(CALL_TYPES, 0.99) for agent in AGENT_TYPES}

        changed = [
            client.put("/config", {"strategy": "random", "max_queue_length": 0, "wrap_up_seconds": 10}),
            client.put("/config", {"call_type_mix": {**dict.fromkeys(CALL_TYPES, 0), "llamada_tipo_1": 1}}),
            client.put("/config/conversion-matrix", {"matrix": matrix}),
            client.patch("/agent-types/agente_tipo_1", {"name": "Renamed in beta"}),
            client.patch("/call-types/llamada_tipo_1", {"name": "Renamed in beta", "mix_weight": 0.5}),
            client.delete("/agent-types/agente_tipo_4"),
            client.delete("/call-types/llamada_tipo_4"),
        ]

        assert [response.status_code for response in changed] == [200, 200, 200, 200, 200, 204, 204]
        assert client.get("/config").json()["strategy"] == "random"
        assert client.get("/config/conversion-matrix").json()["matrix"]["agente_tipo_1"]["llamada_tipo_1"] == 0.99
        assert _snapshot(alpha.client()) == before

    def test_it_applies_beta_saturation_settings_to_beta_only(self, alpha, beta):
        assert beta.client().put("/config", {"max_queue_length": 0}).status_code == 200

        alpha_call = alpha.client().post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})
        beta_call = beta.client().post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"})

        assert alpha_call.status_code == 202
        assert beta_call.status_code == 503
