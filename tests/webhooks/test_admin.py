"""The tenant admin: an endpoint subscribed from the admin (secret shown once, SSRF guard), the
delivery log read-only with its attempts."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage


@pytest.fixture
def admin_browser(alpha) -> Client:
    browser = Client(HTTP_HOST="alpha.localhost")
    with schema_context(alpha.schema_name):
        browser.force_login(get_user_model().objects.get(username="admin"))
    return browser


class WebhookAdminTests:
    def test_it_subscribes_a_url_and_shows_the_secret_once(self, alpha, admin_browser, settings):
        settings.WEBHOOKS_ALLOW_PRIVATE = True
        response = admin_browser.post(
            "/admin/webhooks/webhookendpoint/add/",
            {"url": "http://127.0.0.1:9/hook", "event_types": ["call.assigned"], "description": "CRM", "enabled": "on"},
            follow=True,
        )
        assert response.status_code == 200
        with schema_context(alpha.schema_name):
            endpoint = WebhookEndpoint.objects.get()
            assert endpoint.event_types == ["call.assigned"]
        assert endpoint.secret in response.content.decode()
        assert (
            endpoint.secret
            not in admin_browser.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
        )

    def test_it_refuses_a_private_target(self, alpha, admin_browser):
        response = admin_browser.post(
            "/admin/webhooks/webhookendpoint/add/", {"url": "http://10.0.0.1/hook", "enabled": "on"}
        )
        assert response.status_code == 200 and "public addresses only" in response.content.decode()
        with schema_context(alpha.schema_name):
            assert not WebhookEndpoint.objects.exists()

    def test_the_delivery_log_shows_attempts_and_is_read_only(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/x", secret="whsec_AAAA")
            message = WebhookMessage.objects.create(
                endpoint=endpoint, event_id="6f0c5a8e-0000-4000-8000-000000000001", event_type="call.assigned",
                occurred_at=timezone.now(), sequence=1, payload={}, status=WebhookMessage.Status.FAILED,
            )  # fmt: skip
            WebhookAttempt.objects.create(
                message=message, attempted_at=timezone.now() - datetime.timedelta(seconds=5), succeeded=False,
                status_code=502, latency_ms=12.5, response_excerpt="bad gateway body", error="",
            )  # fmt: skip
        page = admin_browser.get(f"/admin/webhooks/webhookmessage/{message.pk}/change/").content.decode()
        assert "bad gateway body" in page and "502" in page
        assert admin_browser.get("/admin/webhooks/webhookmessage/add/").status_code == 403
        assert (
            admin_browser.post(f"/admin/webhooks/webhookmessage/{message.pk}/delete/", {"post": "yes"}).status_code
            == 403
        )
