"""Webhook endpoints, the fan-out of outbox events into messages, and delivering one message.

Invariants:
- One message per (event, endpoint): the fan-out may run twice for one event (the outbox offers an
  event again when a dispatch rolled back), the unique constraint keeps one.
- A PENDING message is held by at most one task at a time: a task carries the ``lock_token`` it was
  queued with and claims the message by a conditional update on that token; a second copy of the
  task (the broker redelivered it, or a scan queued it again) finds the token changed and does
  nothing. Delivery is still at least once: a worker killed after the receiver answered and before
  the attempt was recorded delivers again later, with the same ``webhook-id``.
- No transaction is open during HTTP I/O: claim (one UPDATE), POST, record (one short transaction).
"""

from __future__ import annotations

import datetime
import logging
import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, UUIDField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import audit_record
from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from events import registry
from events.registry import Event, Phase, subscribe
from events.services import outbox_dispatch
from webhooks import delivery
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from webhooks.selectors import webhook_endpoints_for, webhook_messages_due
from webhooks.ssrf import target_resolve

logger = logging.getLogger(__name__)

# The events a webhook can subscribe to (SPEC §8); configuration changes stay in the audit log.
WEBHOOK_EVENT_TYPES = (
    registry.CALL_QUEUED,
    registry.CALL_ASSIGNED,
    registry.CALL_COMPLETED,
    registry.CALL_CANCELLED,
    registry.CALL_ABANDONED,
    registry.CALL_SATURATED,
    registry.AGENT_STATUS_CHANGED,
)
TEST_EVENT_TYPE = "webhook.test"
# How long a queued task holds its message before a scan may queue it again (a lost task).
QUEUED_LEASE_SECONDS = 120.0
JITTER = 0.2  # each retry delay is multiplied by a factor in [1 - JITTER, 1 + JITTER]
ENQUEUE_BATCH = 1000


def _delivery_lease() -> datetime.timedelta:
    """Longer than one attempt can take (each phase is bounded by the timeout, the read by twice it)."""
    return datetime.timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS * 3 + 5)


def _state(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "include_simulated": endpoint.include_simulated,
    }


def _event_types_check(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [t for t in chosen if t not in WEBHOOK_EVENT_TYPES]
    if unknown:
        raise ApplicationError(
            code="unknown_event_type",
            message=f"Unknown event type(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENT_TYPES)}.",
            errors=[{"field": "event_types", "message": f"Unknown event type {t!r}.", "code": "unknown_event_type"}
                    for t in unknown],
        )  # fmt: skip
    return chosen


def webhook_endpoint_create(
    *,
    url: str,
    event_types: Iterable[str] = (),
    description: str = "",
    enabled: bool = True,
    include_simulated: bool = False,
    actor: Actor,
) -> WebhookEndpoint:
    """Subscribe ``url`` (checked by the SSRF guard) with a new secret; the returned endpoint's
    ``secret`` is the only time it is shown."""
    target_resolve(url)
    endpoint = WebhookEndpoint(
        url=url,
        event_types=_event_types_check(event_types),
        description=description,
        enabled=enabled,
        include_simulated=include_simulated,
        secret=delivery.secret_generate(),
    )
    with transaction.atomic():
        endpoint.save()
        audit_record(actor=actor, action="webhook.create", obj=endpoint, after=_state(endpoint))
    return endpoint


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    include_simulated: bool | None = None,
    actor: Actor,
) -> WebhookEndpoint:
    """Change what is given. Enabling a disabled endpoint clears its reason and failure streak."""
    if url is not None:
        target_resolve(url)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(id=endpoint.id)
        before = _state(locked)
        if url is not None:
            locked.url = url
        if event_types is not None:
            locked.event_types = _event_types_check(event_types)
        if description is not None:
            locked.description = description
        if enabled is not None:
            if enabled and not locked.enabled:
                locked.disabled_reason = ""
                locked.failing_since = None
            locked.enabled = enabled
        if include_simulated is not None:
            locked.include_simulated = include_simulated
        locked.save()
        after = _state(locked)
        if after != before:
            audit_record(actor=actor, action="webhook.update", obj=locked, before=before, after=after)
    return locked


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.delete", obj=endpoint, before=_state(endpoint))
        endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """A new secret signs from now on; the current one keeps signing beside it for
    ``WEBHOOKS_SECRET_GRACE_SECONDS``, so a receiver can switch without losing a message."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(id=endpoint.id)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + datetime.timedelta(
            seconds=settings.WEBHOOKS_SECRET_GRACE_SECONDS
        )
        locked.secret = delivery.secret_generate()
        locked.save()
        audit_record(actor=actor, action="webhook.rotate_secret", obj=locked)
    return locked


def webhook_secrets_in_force(*, endpoint: WebhookEndpoint, now: datetime.datetime) -> list[str]:
    in_force = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        in_force.append(endpoint.previous_secret)
    return in_force


# --- Fan-out -------------------------------------------------------------------------------------


def _enqueue_on_commit(pairs: list[tuple[uuid.UUID, uuid.UUID]], schema_name: str) -> None:
    if not pairs:
        return

    def send() -> None:
        from webhooks.tasks import webhook_deliver

        for message_id, token in pairs:
            webhook_deliver.delay(schema_name, str(message_id), str(token))

    transaction.on_commit(send, robust=True)


def webhook_messages_fan_out(event: Event) -> None:
    """The outbox consumer: one PENDING message per enabled endpoint that wants ``event``, queued
    after the dispatcher's transaction commits. Idempotent by (event, endpoint)."""
    endpoints = webhook_endpoints_for(event_type=event.type)
    if isinstance(event.payload, dict) and event.payload.get("simulated") is True:
        # A simulated call or agent: only for endpoints that asked for simulated traffic.
        endpoints = [endpoint for endpoint in endpoints if endpoint.include_simulated]
    if not endpoints:
        return
    now = timezone.now()
    token = uuid.uuid4()
    messages = [
        WebhookMessage(
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.type,
            occurred_at=event.occurred_at,
            sequence=event.sequence,
            payload=event.payload,
            next_attempt_at=now,
            lock_token=token,
            locked_until=now + datetime.timedelta(seconds=QUEUED_LEASE_SECONDS),
        )
        for endpoint in endpoints
    ]
    WebhookMessage.objects.bulk_create(messages, ignore_conflicts=True)
    # A twin that was ignored has no row under this id: its task finds nothing and stops.
    _enqueue_on_commit([(m.id, token) for m in messages], event.tenant)


def webhook_consumers_register() -> None:
    for event_type in WEBHOOK_EVENT_TYPES:
        subscribe(event_type, phase=Phase.OUTBOX, consumer=webhook_messages_fan_out, name="webhooks.fan_out")


def webhook_messages_enqueue_due(*, schema_name: str, now: datetime.datetime | None = None) -> int:
    """Queue a task for every due message no task holds (retries, and messages whose task or worker
    was lost). A message already held keeps its token, so any copy of its task may claim it once."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            webhook_messages_due(now=now)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:ENQUEUE_BATCH]
        )
        if not ids:
            return 0
        rows = WebhookMessage.objects.filter(id__in=ids)
        rows.update(
            lock_token=Coalesce(F("lock_token"), Value(uuid.uuid4(), output_field=UUIDField())),
            locked_until=now + datetime.timedelta(seconds=QUEUED_LEASE_SECONDS),
        )
        pairs = [(message_id, token) for message_id, token in rows.values_list("id", "lock_token") if token]
        _enqueue_on_commit(pairs, schema_name)
    return len(pairs)


def webhooks_tick(*, schema_name: str, budget_seconds: float = 0.8) -> tuple[int, int]:
    """One tick of a tenant (beat, every second): outbox events become messages (in batches, until
    the outbox is empty or the budget spent), then due messages are queued. Returns (events, queued)."""
    started = time.monotonic()
    dispatched = 0
    while True:
        batch = outbox_dispatch(limit=500)
        dispatched += batch
        if batch < 500 or time.monotonic() - started > budget_seconds:
            break
    return dispatched, webhook_messages_enqueue_due(schema_name=schema_name)


# --- Test message and redelivery -------------------------------------------------------------------


def webhook_test_send(*, endpoint: WebhookEndpoint, schema_name: str) -> WebhookMessage:
    """Queue a ``webhook.test`` message to ``endpoint`` (delivered like any other, signed, retried)."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        message = WebhookMessage.objects.create(
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type=TEST_EVENT_TYPE,
            occurred_at=now,
            sequence=None,
            payload={"webhook_id": str(endpoint.id), "message": "A test message from Callcenter."},
            next_attempt_at=now,
            lock_token=token,
            locked_until=now + datetime.timedelta(seconds=QUEUED_LEASE_SECONDS),
        )
        _enqueue_on_commit([(message.id, token)], schema_name)
    return message


def webhook_message_redeliver(*, message: WebhookMessage, schema_name: str, actor: Actor) -> WebhookMessage:
    """Deliver ``message`` again now, with a fresh retry schedule and the same ``webhook-id``."""
    if not message.endpoint.enabled:
        raise ApplicationError(
            code="webhook_disabled", message="The endpoint is disabled: enable it first.", status=409
        )
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        WebhookMessage.objects.filter(id=message.id).update(
            status=WebhookMessage.Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            lock_token=token,
            locked_until=now + datetime.timedelta(seconds=QUEUED_LEASE_SECONDS),
            updated_at=now,
        )
        audit_record(actor=actor, action="webhook.redeliver", obj=message)
        _enqueue_on_commit([(message.id, token)], schema_name)
    message.refresh_from_db()
    return message


# --- Delivery ---------------------------------------------------------------------------------------


def _retry_delay(attempts: int) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones, or None when the schedule is spent."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return float(schedule[attempts - 1]) * random.uniform(1 - JITTER, 1 + JITTER)


def webhook_message_deliver(*, message_id: uuid.UUID, token: uuid.UUID) -> WebhookAttempt | None:
    """One attempt at ``message_id`` if ``token`` still holds it; records the attempt and schedules
    the next one or ends the message. Returns the attempt, or None when there was nothing to do."""
    now = timezone.now()
    claim = uuid.uuid4()
    claimed = WebhookMessage.objects.filter(
        id=message_id, status=WebhookMessage.Status.PENDING, lock_token=token
    ).update(lock_token=claim, locked_until=now + _delivery_lease(), updated_at=now)
    if not claimed:
        return None
    message = WebhookMessage.objects.select_related("endpoint").get(id=message_id)
    endpoint = message.endpoint
    if not endpoint.enabled:
        WebhookMessage.objects.filter(id=message_id, lock_token=claim).update(
            status=WebhookMessage.Status.FAILED, lock_token=None, locked_until=None, next_attempt_at=None
        )
        return None
    body = delivery.body_encode(
        event_type=message.event_type,
        occurred_at=message.occurred_at,
        data=message.payload,
        sequence=message.sequence,
    )
    headers = delivery.headers_sign(
        secrets_in_force=webhook_secrets_in_force(endpoint=endpoint, now=now),
        message_id=str(message.event_id),
        body=body,
        now=time.time(),
    )
    result = delivery.post(url=endpoint.url, body=body, headers=headers)
    return _attempt_record(message_id=message_id, endpoint_id=endpoint.id, attempted_at=now, result=result)


def _attempt_record(
    *, message_id: uuid.UUID, endpoint_id: uuid.UUID, attempted_at: datetime.datetime, result: delivery.AttemptResult
) -> WebhookAttempt:
    now = timezone.now()
    with transaction.atomic():
        message = WebhookMessage.objects.select_for_update().get(id=message_id)
        attempt = WebhookAttempt.objects.create(
            message=message,
            attempted_at=attempted_at,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.response_excerpt,
            error=result.error,
        )
        message.attempts += 1
        message.last_attempt_at = attempted_at
        message.lock_token = None
        message.locked_until = None
        if result.succeeded:
            message.status = WebhookMessage.Status.SUCCEEDED
            message.delivered_at = now
            message.next_attempt_at = None
            WebhookEndpoint.objects.filter(id=endpoint_id, failing_since__isnull=False).update(failing_since=None)
        elif message.status == WebhookMessage.Status.PENDING:
            delay = _retry_delay(message.attempts)
            if delay is None:
                message.status = WebhookMessage.Status.FAILED
                message.next_attempt_at = None
            else:
                message.next_attempt_at = now + datetime.timedelta(seconds=delay)
        message.save()
        if not result.succeeded:
            _endpoint_failure(endpoint_id=endpoint_id, now=now)
    return attempt


def _endpoint_failure(*, endpoint_id: uuid.UUID, now: datetime.datetime) -> None:
    """Start the endpoint's failure streak, or disable it when the streak is too long (the tenant is
    told by the endpoint's ``disabled_reason``, in the API and the admin, and by the audit log)."""
    WebhookEndpoint.objects.filter(id=endpoint_id, failing_since__isnull=True).update(failing_since=now)
    limit = now - datetime.timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS)
    hours = settings.WEBHOOKS_DISABLE_AFTER_SECONDS / 3600
    reason = f"Every attempt failed for more than {hours:g} h; disabled at {now:%Y-%m-%d %H:%M} UTC."
    disabled = WebhookEndpoint.objects.filter(id=endpoint_id, enabled=True, failing_since__lte=limit).update(
        enabled=False, disabled_reason=reason[:200], updated_at=now
    )
    if disabled:
        endpoint = WebhookEndpoint.objects.get(id=endpoint_id)
        audit_record(actor=Actor.system("webhooks"), action="webhook.disabled", obj=endpoint, after={"reason": reason})
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
        WebhookMessage.objects.filter(endpoint_id=endpoint_id, status=WebhookMessage.Status.PENDING).update(
            status=WebhookMessage.Status.FAILED, next_attempt_at=None, lock_token=None, locked_until=None
        )
