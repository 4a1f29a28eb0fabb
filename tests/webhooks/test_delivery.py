"""Delivery to a real HTTP receiver on 127.0.0.1: signed per Standard Webhooks (checked by the
`standardwebhooks` library), retried after 500s and timeouts, every attempt logged, a dead
endpoint disabled, redelivery and the test message, the SSRF guard at delivery time.

Tasks run eagerly in this process (``eager_tasks``) and each test drives the beat's tick itself,
so nothing waits on a schedule; the retry schedule is all zeros here (``allow_private``)."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from audit.models import AuditEntry
from dashboard.selectors import dashboard_state
from events.models import OutboxEvent
from simulation.models import SimulationRun
from tests.factories import make_agent, make_call
from tests.webhooks.receiver import Receiver, http_receiver, wait_until
from webhooks.models import WebhookEndpoint, WebhookMessage
from webhooks.services import webhooks_tick

pytestmark = pytest.mark.usefixtures("allow_private", "eager_tasks")


def _endpoint(tenant: Any, url: str, **body: Any) -> dict[str, Any]:
    response = tenant.client().post("/webhooks", {"url": url, **body})
    assert response.status_code == 201, response.content
    return response.json()


def _tick(tenant: Any) -> tuple[int, int]:
    with schema_context(tenant.schema_name):
        return webhooks_tick(schema_name=tenant.schema_name)


def _agent_and_call(tenant: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    client = tenant.client()
    agent = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "status": "AVAILABLE"}).json()
    call = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}).json()
    assert call["status"] == "ASSIGNED", call
    return agent, call


def _messages(tenant: Any) -> list[WebhookMessage]:
    with schema_context(tenant.schema_name):
        return list(WebhookMessage.objects.order_by("created_at").prefetch_related("attempt_log"))


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def _deliver_until_done(tenant: Any, *, ticks: int = 20) -> list[WebhookMessage]:
    """Tick (retries are due at once here) until no message is PENDING."""
    for _ in range(ticks):
        _tick(tenant)
        messages = _messages(tenant)
        if messages and all(m.status != WebhookMessage.Status.PENDING for m in messages):
            return messages
    raise AssertionError([(m.event_type, m.status, m.attempts) for m in _messages(tenant)])


class SigningTests:
    def test_the_standardwebhooks_library_verifies_every_message(self, alpha):
        with http_receiver() as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            _, call = _agent_and_call(alpha)
            _deliver_until_done(alpha)

            verifier = Webhook(endpoint["secret"])
            with schema_context(alpha.schema_name):
                outbox = {str(e.id): e for e in OutboxEvent.objects.all()}
            assert len(receiver.received) == len(outbox) >= 2
            for request in receiver.received:
                body = verifier.verify(request.body, request.headers)
                event = outbox[request.headers["webhook-id"]]
                assert body["type"] == event.type
                assert body["sequence"] == event.sequence
                assert body["data"] == json.loads(json.dumps(event.payload))
                assert datetime.datetime.fromisoformat(body["timestamp"]) == event.occurred_at
            assert any(b["type"] == "call.assigned" and b["data"]["id"] == call["id"] for b in _bodies(receiver))
            assert "600123456" not in b"".join(r.body for r in receiver.received).decode()  # masked

    def test_a_wrong_secret_or_a_changed_body_fails_verification(self, alpha):
        with http_receiver() as receiver:
            _endpoint(alpha, receiver.url)
            _agent_and_call(alpha)
            _deliver_until_done(alpha)
            request = receiver.received[0]
            other = _endpoint(alpha, receiver.url)["secret"]
            with pytest.raises(WebhookVerificationError):
                Webhook(other).verify(request.body, request.headers)

    def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(self, alpha):
        with http_receiver() as receiver:
            old = _endpoint(alpha, receiver.url)
            new = alpha.client().post(f"/webhooks/{old['id']}/rotate-secret").json()
            assert alpha.client().post(f"/webhooks/{old['id']}/test").status_code == 202
            wait_until(lambda: receiver.received, what="the test message")
            request = receiver.received[-1]
            assert len(request.headers["webhook-signature"].split(" ")) == 2
            Webhook(old["secret"]).verify(request.body, request.headers)
            Webhook(new["secret"]).verify(request.body, request.headers)

            with schema_context(alpha.schema_name):
                WebhookEndpoint.objects.update(previous_secret_expires_at=timezone.now())
            alpha.client().post(f"/webhooks/{old['id']}/test")
            wait_until(lambda: len(receiver.received) == 2, what="the second test message")
            request = receiver.received[-1]
            Webhook(new["secret"]).verify(request.body, request.headers)
            with pytest.raises(WebhookVerificationError):
                Webhook(old["secret"]).verify(request.body, request.headers)


class FanOutTests:
    def test_posting_a_call_does_no_webhook_work_the_outbox_tick_does(self, alpha):
        with http_receiver() as receiver:
            _endpoint(alpha, receiver.url)
            _agent_and_call(alpha)
            assert _messages(alpha) == [] and receiver.received == []
            events, _ = _tick(alpha)
            assert events >= 2
            assert len(_messages(alpha)) == events

    def test_each_endpoint_gets_only_the_types_it_wants_and_a_disabled_one_nothing(self, alpha):
        with http_receiver() as calls_only, http_receiver() as everything, http_receiver() as disabled:
            _endpoint(alpha, calls_only.url, event_types=["call.assigned"])
            _endpoint(alpha, everything.url)
            _endpoint(alpha, disabled.url, enabled=False)
            _agent_and_call(alpha)
            _deliver_until_done(alpha)
            assert {b["type"] for b in _bodies(calls_only)} == {"call.assigned"}
            assert {b["type"] for b in _bodies(everything)} >= {"call.assigned", "agent.status_changed"}
            assert disabled.received == []

    def test_simulated_traffic_goes_only_to_endpoints_that_ask_for_it(self, alpha):
        with http_receiver() as real_only, http_receiver() as with_simulated:
            shown = _endpoint(alpha, real_only.url)
            assert shown["include_simulated"] is False
            _endpoint(alpha, with_simulated.url, include_simulated=True)
            with schema_context(alpha.schema_name):
                run = SimulationRun.objects.create(seed=5, strategy="longest_idle", rate_per_second=1, time_scale=1)
                make_agent(name="sim agent", simulated=True)
                assert make_call(simulation_run=run).status == "ASSIGNED"  # to the simulated agent
            _agent_and_call(alpha)
            _deliver_until_done(alpha)
            real_seen = {(b["type"], b["data"]["simulated"]) for b in _bodies(real_only)}
            all_seen = {(b["type"], b["data"]["simulated"]) for b in _bodies(with_simulated)}
            assert ("call.assigned", False) in real_seen and all(not simulated for _, simulated in real_seen)
            assert {("call.assigned", True), ("call.assigned", False)} <= all_seen

    def test_an_event_offered_twice_makes_one_message_per_endpoint(self, alpha):
        with http_receiver() as receiver:
            _endpoint(alpha, receiver.url)
            _agent_and_call(alpha)
            _tick(alpha)
            with schema_context(alpha.schema_name):
                first = WebhookMessage.objects.count()
                OutboxEvent.objects.update(dispatched_at=None)  # as if the dispatch had rolled back
            _tick(alpha)
            assert len(_messages(alpha)) == first

    def test_a_receiver_orders_and_deduplicates_by_sequence_and_webhook_id(self, alpha):
        with http_receiver() as receiver:
            endpoint = _endpoint(alpha, receiver.url, event_types=["call.assigned", "call.completed"])
            _, call = _agent_and_call(alpha)
            alpha.client().post(f"/calls/{call['id']}/complete", {"outcome": "OK"})
            messages = _deliver_until_done(alpha)
            redelivered = alpha.client().post(f"/webhooks/{endpoint['id']}/messages/{messages[0].id}/redeliver")
            assert redelivered.status_code == 202, redelivered.content
            wait_until(lambda: len(receiver.received) == 3, what="the redelivery")

            seen: dict[str, dict[str, Any]] = {}
            for request in receiver.received:
                seen.setdefault(request.headers["webhook-id"], json.loads(request.body))
            ordered = sorted(seen.values(), key=lambda body: body["sequence"])
            assert [(b["type"], b["sequence"]) for b in ordered] == [("call.assigned", 1), ("call.completed", 2)]
            assert ordered[-1]["data"]["status"] == "COMPLETED"


class RetryTests:
    def test_it_retries_after_500s_and_logs_every_attempt(self, alpha):
        with http_receiver([500, 503, 200]) as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            assert message.status == WebhookMessage.Status.SUCCEEDED
            attempts = list(message.attempt_log.all())
            assert [a.status_code for a in attempts] == [500, 503, 200]
            assert [a.succeeded for a in attempts] == [False, False, True]
            assert attempts[0].response_excerpt.startswith("receiver says no")
            assert len(attempts[0].response_excerpt) <= 1000
            assert len({r.headers["webhook-id"] for r in receiver.received}) == 1

            log = alpha.client().get(f"/webhooks/{endpoint['id']}/messages").json()["results"]
            assert [a["status_code"] for a in log[0]["attempt_log"]] == [500, 503, 200]
            assert log[0]["status"] == "SUCCEEDED"
            # The SPEC's name for the delivery log answers the same list.
            deliveries = alpha.client().get(f"/webhooks/{endpoint['id']}/deliveries").json()["results"]
            assert deliveries == log
        with schema_context(alpha.schema_name):
            assert WebhookEndpoint.objects.get(id=endpoint["id"]).failing_since is None

    def test_it_retries_after_a_timeout(self, alpha):
        with http_receiver([("hang", 5, 200), 200]) as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            first, second = message.attempt_log.all()
            assert first.status_code is None and "timeout" in first.error
            assert second.succeeded
            assert len(receiver.received) == 2

    def test_a_redirect_is_not_followed(self, alpha, settings):
        settings.WEBHOOKS_RETRY_SCHEDULE = []
        with http_receiver([302]) as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            assert message.status == WebhookMessage.Status.FAILED
            assert [a.status_code for a in message.attempt_log.all()] == [302]

    def test_it_gives_up_when_the_schedule_is_spent(self, alpha):
        with http_receiver([500]) as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            assert message.status == WebhookMessage.Status.FAILED
            assert message.attempts == 4  # the first attempt and three retries
            assert len(receiver.received) == 4

    def test_an_endpoint_failing_for_longer_than_the_limit_is_disabled_and_the_tenant_told(self, alpha, settings):
        settings.WEBHOOKS_DISABLE_AFTER_SECONDS = 3600
        with http_receiver([500]) as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            _tick(alpha)
            with schema_context(alpha.schema_name):
                # Failing for less than the limit: still enabled.
                assert WebhookEndpoint.objects.get(id=endpoint["id"]).enabled
                WebhookEndpoint.objects.update(failing_since=timezone.now() - datetime.timedelta(hours=2))
            _tick(alpha)
            shown = alpha.client().get(f"/webhooks/{endpoint['id']}").json()
            assert shown["enabled"] is False and "failed" in shown["disabled_reason"]
            with schema_context(alpha.schema_name):
                assert AuditEntry.objects.filter(action="webhook.disabled", object_id=endpoint["id"]).exists()
                assert not WebhookMessage.objects.filter(status=WebhookMessage.Status.PENDING).exists()
                # The supervisors' dashboard warns about it too.
                warned = dashboard_state(can_operate=False)["webhooks_disabled"]
                assert [(w["id"], w["url"], w["reason"]) for w in warned] == [
                    (endpoint["id"], endpoint["url"], shown["disabled_reason"])
                ]
            sent = len(receiver.received)
            _agent_and_call(alpha)
            _tick(alpha)
            assert len(receiver.received) == sent  # a disabled endpoint gets nothing

            again = alpha.client().patch(f"/webhooks/{endpoint['id']}", {"enabled": True}).json()
            assert again["enabled"] is True and again["disabled_reason"] == "" and again["failing_since"] is None
            # Turned off by a person is no alarm; turned on again, the warning is gone.
            alpha.client().patch(f"/webhooks/{endpoint['id']}", {"enabled": False})
            with schema_context(alpha.schema_name):
                assert dashboard_state(can_operate=False)["webhooks_disabled"] == []


class RedeliveryTests:
    def test_a_message_is_delivered_again_on_request_with_the_same_id(self, alpha):
        with http_receiver() as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            test = alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            assert test.status_code == 202, test.content
            assert test.json()["event_type"] == "webhook.test"
            [message] = _deliver_until_done(alpha)
            response = alpha.client().post(f"/webhooks/{endpoint['id']}/messages/{message.id}/redeliver")
            assert response.status_code == 202, response.content
            wait_until(lambda: len(receiver.received) == 2, what="the redelivery")
            assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
            assert len(_messages(alpha)[0].attempt_log.all()) == 2

    def test_a_message_of_a_disabled_endpoint_is_not_redelivered(self, alpha):
        with http_receiver() as receiver:
            endpoint = _endpoint(alpha, receiver.url)
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            alpha.client().patch(f"/webhooks/{endpoint['id']}", {"enabled": False})
            response = alpha.client().post(f"/webhooks/{endpoint['id']}/messages/{message.id}/redeliver")
            assert response.status_code == 409 and response.json()["code"] == "webhook_disabled"


class DeliveryTimeSsrfTests:
    def test_a_target_that_became_private_is_refused_at_delivery(self, alpha, settings):
        with http_receiver() as receiver:
            endpoint = _endpoint(alpha, receiver.url)  # allowed at save (the setting is on)
            settings.WEBHOOKS_ALLOW_PRIVATE = False
            settings.WEBHOOKS_RETRY_SCHEDULE = []
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha)
            [attempt] = message.attempt_log.all()
            assert message.status == WebhookMessage.Status.FAILED
            assert attempt.status_code is None and "loopback, private" in attempt.error
            assert receiver.received == []


class ReceiverCommandTests:
    def test_the_demo_receiver_accepts_our_signature_and_refuses_another(self, alpha):
        from webhooks.delivery import body_encode, headers_sign, secret_generate
        from webhooks.management.commands.webhook_receiver import verified

        secret = secret_generate()
        body = body_encode(event_type="webhook.test", occurred_at=timezone.now(), data={}, sequence=None)
        headers = headers_sign(secrets_in_force=[secret], message_id="msg_1", body=body, now=time.time())
        assert verified(secret, headers, body)
        assert not verified(secret_generate(), headers, body)
        assert not verified(secret, headers, body + b" ")
        Webhook(secret).verify(body, headers)  # and the reference library agrees


class DnsTests:
    def _dns(self, monkeypatch, answers):
        """``hooks.test`` resolves to each of ``answers`` in turn (the last one for ever after)."""
        import socket

        real = socket.getaddrinfo
        remaining = list(answers)

        def fake(host, port, *args, **kwargs):
            if host != "hooks.test":
                return real(host, port, *args, **kwargs)
            address = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)

    def test_it_connects_to_the_address_it_checked_not_to_a_second_lookup(self, alpha, monkeypatch):
        with http_receiver() as receiver:
            port = receiver.url.split(":")[2].split("/")[0]
            # Save and the delivery's check see the receiver; any later lookup would get a black hole.
            self._dns(monkeypatch, ["127.0.0.1", "127.0.0.1", "10.255.255.1"])
            endpoint = _endpoint(alpha, f"http://hooks.test:{port}/hook")
            alpha.client().post(f"/webhooks/{endpoint['id']}/test")
            [message] = _deliver_until_done(alpha, ticks=1)
            assert message.status == WebhookMessage.Status.SUCCEEDED
            assert receiver.received[0].headers["host"] == f"hooks.test:{port}"

    def test_a_host_that_now_resolves_to_a_private_address_is_refused_at_delivery(self, alpha, monkeypatch, settings):
        settings.WEBHOOKS_ALLOW_PRIVATE = False
        settings.WEBHOOKS_RETRY_SCHEDULE = []
        self._dns(monkeypatch, ["93.184.216.34", "169.254.169.254"])
        endpoint = _endpoint(alpha, "https://hooks.test/hook")
        alpha.client().post(f"/webhooks/{endpoint['id']}/test")
        [message] = _deliver_until_done(alpha)
        [attempt] = message.attempt_log.all()
        assert attempt.status_code is None and "169.254.169.254" in attempt.error
