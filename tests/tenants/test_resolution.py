"""Tenant resolution, API keys, scopes and the per-key rate limit (SPEC §5)."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import Agent
from callcenter.actors import Actor
from tenants.models import ApiKey
from tenants.services import apikey_create, apikey_revoke
from tests.helpers import ApiClient, assert_problem

CLI = Actor.system("test")


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return [agent["name"] for agent in response.json()["results"]]


def _agent_names_in(schema_name: str) -> set[str]:
    with schema_context(schema_name):
        return set(Agent.objects.values_list("name", flat=True))


class TenantResolutionTests:
    @pytest.mark.parametrize("host", ["localhost", "beta.localhost", "nowhere.localhost"])
    def test_it_resolves_the_key_s_tenant_whatever_the_host(self, alpha, beta, host):
        client = ApiClient(key=alpha.api_key, host=host)

        response = client.post("/agents", {"name": f"via {host}", "agent_type": "agente_tipo_1"})

        assert response.status_code == 201, response.content[:300]
        assert _agent_names_in(alpha.schema_name) == {f"via {host}"}
        assert _agent_names_in(beta.schema_name) == set()
        assert _names(alpha.client().get("/agents")) == [f"via {host}"]
        assert _names(beta.client().get("/agents")) == []
        assert _names(ApiClient(key=beta.api_key, host="alpha.localhost").get("/agents")) == []

    def test_it_accepts_the_key_as_bearer_token_and_as_x_api_key(self, alpha):
        alpha.client().post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"})

        bearer = ApiClient(key=None).get("/agents", headers={"Authorization": f"Bearer {alpha.api_key}"})
        header = ApiClient(key=None).get("/agents", headers={"X-API-Key": alpha.api_key})

        assert _names(bearer) == ["Ana"]
        assert _names(header) == ["Ana"]

    def test_it_refuses_two_different_keys_even_when_one_is_valid(self, alpha, beta):
        for other in ("not-a-key", beta.api_key):
            response = ApiClient(key=alpha.api_key).get("/agents", headers={"X-API-Key": other})
            assert_problem(response, 401, "invalid_api_key")
            response = ApiClient(key=other).get("/agents", headers={"X-API-Key": alpha.api_key})
            assert_problem(response, 401, "invalid_api_key")
        # The same key in both headers is one key.
        same = ApiClient(key=alpha.api_key).get("/agents", headers={"X-API-Key": alpha.api_key})
        assert same.status_code == 200

    def test_it_refuses_a_malformed_key(self, alpha, subtests):
        for raw in ("foo", "cc_x", "cc_abc_", "cc__secret", "cc_ab-c_secret", "cc_", "Bearer"):
            with subtests.test(raw=raw):
                response = ApiClient(key=raw).get("/agents")

                assert_problem(response, 401, "invalid_api_key")
                assert response["WWW-Authenticate"].startswith("Bearer")

    def test_it_refuses_a_malformed_key_sent_as_x_api_key(self, alpha):
        response = ApiClient(key=None).get("/agents", headers={"X-API-Key": "not-a-key"})

        assert_problem(response, 401, "invalid_api_key")

    def test_it_refuses_an_unknown_prefix(self, alpha):
        response = ApiClient(key="cc_00000000_thisisnotarealsecret").get("/agents")

        assert_problem(response, 401, "invalid_api_key")

    def test_it_refuses_a_known_prefix_with_the_wrong_secret(self, alpha):
        prefix = alpha.api_key.split("_")[1]

        response = ApiClient(key=f"cc_{prefix}_wrong-secret").get("/agents")

        assert_problem(response, 401, "invalid_api_key")
        # The right secret still works: the wrong one did not poison the cached lookup.
        assert alpha.client().get("/agents").status_code == 200

    def test_it_refuses_a_revoked_key_at_once_even_after_a_cached_lookup(self, alpha):
        issued = apikey_create(tenant=alpha.tenant, name="to revoke", scope="write", actor=CLI)
        client = ApiClient(key=issued.raw_key)
        assert client.get("/agents").status_code == 200  # the lookup is now cached

        apikey_revoke(api_key=issued.api_key, actor=CLI)

        assert_problem(client.get("/agents"), 401, "invalid_api_key")
        assert_problem(client.post("/agents", {"name": "x", "agent_type": "agente_tipo_1"}), 401, "invalid_api_key")
        assert _agent_names_in(alpha.schema_name) == set()
        assert ApiKey.objects.get(pk=issued.api_key.pk).revoked_at is not None

    def test_it_refuses_a_key_created_revoked_before_its_first_use(self, alpha):
        issued = apikey_create(tenant=alpha.tenant, name="never used", scope="write", actor=CLI)
        apikey_revoke(api_key=issued.api_key, actor=CLI)

        assert_problem(ApiClient(key=issued.raw_key).get("/agents"), 401, "invalid_api_key")

    def test_it_asks_for_a_tenant_on_the_public_host_without_a_key(self, alpha):
        for path in ("/agents", "/calls", "/config", "/system/status"):
            response = ApiClient(key=None).get(path)

            assert_problem(response, 401, "tenant_required")
            assert response["WWW-Authenticate"].startswith("Bearer")

    def test_it_asks_for_credentials_on_a_tenant_host_without_a_key(self, alpha):
        client = ApiClient(key=None, host="alpha.localhost")

        assert_problem(client.get("/agents"), 401, "not_authenticated")
        assert_problem(client.post("/agents", {"name": "x", "agent_type": "agente_tipo_1"}), 401, "not_authenticated")
        assert _agent_names_in(alpha.schema_name) == set()

    def test_it_ignores_other_authorization_schemes(self, alpha):
        response = Client(HTTP_HOST="localhost").get("/agents", headers={"Authorization": f"Basic {alpha.api_key}"})

        assert_problem(response, 401, "tenant_required")

    def test_it_lets_a_read_key_read_but_not_write(self, alpha):
        agent = alpha.client().post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"}).json()
        reader = ApiClient(key=apikey_create(tenant=alpha.tenant, name="reader", scope="read", actor=CLI).raw_key)

        assert _names(reader.get("/agents")) == ["Ana"]
        assert reader.get(f"/agents/{agent['id']}").status_code == 200
        assert reader.get("/config").status_code == 200
        refused = [
            reader.post("/agents", {"name": "Bob", "agent_type": "agente_tipo_1"}),
            reader.put(f"/agents/{agent['id']}/status", {"status": "AVAILABLE"}),
            reader.patch(f"/agents/{agent['id']}", {"name": "Renamed"}),
            reader.delete(f"/agents/{agent['id']}"),
            reader.post("/calls", {"phone_number": "+34600000001", "call_type": "llamada_tipo_1"}),
        ]

        for response in refused:
            assert_problem(response, 403, "permission_denied")
        with schema_context(alpha.schema_name):
            stored = Agent.objects.get()
            assert (stored.name, stored.status) == ("Ana", Agent.Status.OFFLINE)
        assert alpha.client().get("/calls").json()["results"] == []

    def test_it_records_when_a_key_was_last_used(self, alpha):
        issued = apikey_create(tenant=alpha.tenant, name="fresh", scope="read", actor=CLI)
        assert issued.api_key.last_used_at is None

        assert ApiClient(key=issued.raw_key).get("/agents").status_code == 200

        assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at is not None

    def test_it_rate_limits_a_burst_per_key(self, alpha, beta, settings):
        settings.API_RATE_LIMIT_PER_SECOND = 3
        client = ApiClient(key=apikey_create(tenant=alpha.tenant, name="burst", scope="read", actor=CLI).raw_key)

        # 20 requests take far less than a second, so they span at most two one-second windows.
        responses = [client.get("/agents") for _ in range(20)]

        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        assert {r.status_code for r in responses} == {200, 429}
        body = assert_problem(limited[0], 429, "rate_limited")
        assert "3" in body["detail"]
        assert int(limited[0]["Retry-After"]) >= 1
        # The limit is per key: another key is not slowed down by this one's burst.
        assert beta.client().get("/agents").status_code == 200
