"""Webhook endpoints of a tenant, one message per (event, endpoint), and every delivery attempt.

Postgres decides what is due: a message is PENDING until an attempt succeeds or the retry schedule
runs out; ``next_attempt_at`` is the retry time, ``locked_until`` the lease of the task queued for it or the
worker delivering it (a worker that dies mid-delivery leaves a lease that expires, and the next scan
queues the message again), so no message depends on a Celery task surviving.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from callcenter.fields import EncryptedTextField


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    # The event types it wants; empty means every type.
    event_types = ArrayField(models.CharField(max_length=64), blank=True, default=list)
    description = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Events of simulated calls and agents (simulations, demo traffic) are left out unless asked for.
    include_simulated = models.BooleanField(
        default=False,
        help_text=(
            "Also send events of simulated calls and agents (simulations, demo traffic). "
            "Tick it to watch a simulation arrive."
        ),
    )
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # whsec_<base64>: needed in clear to sign, so encrypted at rest rather than hashed.
    secret = EncryptedTextField()
    # The secret before the last rotation, still signing (beside the new one) until it expires.
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Set by the first failed attempt after a success; cleared by a success. Failing for longer than
    # WEBHOOKS_DISABLE_AFTER_SECONDS disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    # The outbox event's id: the webhook-id header, the receiver's deduplication key.
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    # The event's per-object sequence number (null for a test message).
    sequence = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField()  # the object as the API shows it: the body's "data"
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Who may deliver it now: the token given to the queued task, and until when that holds (a task
    # lost with its worker leaves a lease that expires; the next scan queues the message again).
    lock_token = models.UUIDField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            # Fan-out is idempotent: the outbox may offer an event twice.
            models.UniqueConstraint(fields=["event_id", "endpoint"], name="webhook_message_once_per_endpoint"),
        ]
        indexes = [
            # The scan for due messages: PENDING with next_attempt_at in the past.
            models.Index(fields=["next_attempt_at"], condition=Q(status="PENDING"), name="webhook_message_due"),
            # GET /webhooks/{id}/messages: an endpoint's messages, newest first.
            models.Index(fields=["endpoint", "-created_at"], name="webhook_message_by_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"


class WebhookAttempt(models.Model):
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
