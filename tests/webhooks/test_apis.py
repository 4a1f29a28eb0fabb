"""The /webhooks API: CRUD in the shape of the other APIs, the secret shown once, problem details
for bad input, read keys read only, and one tenant never sees another's endpoints or messages."""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import schema_context

from callcenter.actors import Actor
from tenants.services import apikey_create
from tests.helpers import ApiClient, assert_problem
from webhooks.models import WebhookEndpoint

URL = "https://hooks.example.com/callcenter"


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: Any) -> None:
    """hooks.example.com resolves to a public documentation-free address without asking a resolver."""
    import socket

    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
        if host == "rebind.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _create(client: ApiClient, **body: Any) -> Any:
    return client.post("/webhooks", {"url": URL, **body})


class WebhookApiTests:
    def test_it_creates_an_endpoint_and_shows_its_secret_only_once(self, alpha):
        client = alpha.client()
        response = _create(client, event_types=["call.assigned", "call.queued"], description="CRM")
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["secret"].startswith("whsec_")
        assert created["event_types"] == ["call.assigned", "call.queued"]
        assert created["enabled"] is True and created["disabled_reason"] == ""
        assert response["Location"] == f"/webhooks/{created['id']}"

        detail = client.get(f"/webhooks/{created['id']}").json()
        assert "secret" not in detail
        listed = client.get("/webhooks").json()["results"]
        assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]

    def test_it_updates_and_deletes(self, alpha):
        client = alpha.client()
        created = _create(client).json()
        response = client.patch(
            f"/webhooks/{created['id']}", {"enabled": False, "event_types": ["agent.status_changed"]}
        )
        assert response.status_code == 200, response.content
        assert response.json()["enabled"] is False
        assert response.json()["event_types"] == ["agent.status_changed"]
        assert client.delete(f"/webhooks/{created['id']}").status_code == 204
        assert_problem(client.get(f"/webhooks/{created['id']}"), 404, "webhook_not_found")

    def test_it_rotates_the_secret_keeping_the_old_one_for_the_grace_period(self, alpha):
        client = alpha.client()
        created = _create(client).json()
        rotated = client.post(f"/webhooks/{created['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.content
        assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
        with schema_context(alpha.schema_name):
            endpoint = WebhookEndpoint.objects.get(id=created["id"])
            assert endpoint.previous_secret == created["secret"]
            assert endpoint.previous_secret_expires_at is not None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "not a url"}, "url"),
            ({"url": URL, "event_types": ["call.exploded"]}, "event_types"),
            ({"url": URL, "event_types": "call.assigned"}, "event_types"),
            ({"url": URL, "colour": "red"}, "colour"),
            ({"url": URL, "enabled": "yes"}, "enabled"),
            ({}, "url"),
        ],
    )
    def test_it_refuses_bad_input_with_a_problem(self, alpha, body, field):
        problem = assert_problem(alpha.client().post("/webhooks", body), 400, "validation_error")
        assert field in {error["field"].split(".")[0] for error in problem["errors"]}, problem
        with schema_context(alpha.schema_name):
            assert not WebhookEndpoint.objects.exists()

    def test_a_read_key_reads_but_does_not_write(self, alpha):
        created = _create(alpha.client()).json()
        reader = ApiClient(key=apikey_create(tenant=alpha.tenant, name="r", scope="read", actor=Actor.system()).raw_key)
        assert reader.get(f"/webhooks/{created['id']}").status_code == 200
        assert reader.get(f"/webhooks/{created['id']}/messages").status_code == 200
        assert_problem(reader.post("/webhooks", {"url": URL}), 403, "permission_denied")
        assert_problem(reader.post(f"/webhooks/{created['id']}/rotate-secret"), 403, "permission_denied")
        assert_problem(reader.delete(f"/webhooks/{created['id']}"), 403, "permission_denied")

    def test_another_tenant_sees_nothing_of_the_first_tenants_endpoints(self, alpha, beta):
        created = _create(alpha.client()).json()
        with schema_context(alpha.schema_name):
            from webhooks.services import webhook_test_send

            message = webhook_test_send(
                endpoint=WebhookEndpoint.objects.get(id=created["id"]), schema_name=alpha.schema_name
            )
        other = beta.client()
        assert other.get("/webhooks").json()["results"] == []
        base = f"/webhooks/{created['id']}"
        for response in (
            other.get(base),
            other.patch(base, {"enabled": False}),
            other.delete(base),
            other.post(f"{base}/rotate-secret"),
            other.post(f"{base}/test"),
            other.get(f"{base}/messages"),
            other.post(f"{base}/messages/{message.id}/redeliver"),
        ):
            assert_problem(response, 404, "webhook_not_found")
        assert alpha.client().get(base).json()["enabled"] is True


class SsrfGuardTests:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8000/hook",
            "http://localhost/hook",
            "http://10.0.0.7/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "https://rebind.example.com/hook",
        ],
    )
    def test_it_refuses_private_loopback_link_local_and_metadata_targets(self, alpha, url):
        assert_problem(alpha.client().post("/webhooks", {"url": url}), 400, "webhook_url_refused")
        created = _create(alpha.client()).json()
        assert_problem(alpha.client().patch(f"/webhooks/{created['id']}", {"url": url}), 400, "webhook_url_refused")

    @pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://hooks.example.com/"])
    def test_it_refuses_other_schemes(self, alpha, url):
        response = alpha.client().post("/webhooks", {"url": url})
        assert response.status_code == 400, response.content
        assert response.json()["code"] in ("webhook_url_refused", "validation_error")

    def test_it_takes_private_targets_when_the_setting_allows_them(self, alpha, settings):
        settings.WEBHOOKS_ALLOW_PRIVATE = True
        assert alpha.client().post("/webhooks", {"url": "http://127.0.0.1:9/hook"}).status_code == 201
