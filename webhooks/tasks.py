"""Webhook tasks. Every tenant task takes ``schema_name`` first and runs inside it.

Delivery is one task per message (acks late): a slow or dead receiver holds one worker slot for at
most the timeout, never another endpoint's or tenant's messages. Retries are not Celery countdowns
(an ETA of hours sits unacknowledged in a worker and is redelivered by the broker's visibility
timeout): the message's ``next_attempt_at`` in Postgres is the schedule, and the tick queues what is due.
"""

from __future__ import annotations

import uuid

from celery import shared_task
from django.core.cache import cache
from django.db import ProgrammingError
from django_tenants.utils import schema_context

from callcenter.logging import tenant_var
from tenants.selectors import tenant_list
from webhooks.services import webhook_message_deliver, webhooks_tick


@shared_task(ignore_result=True)
def webhooks_tick_all_tenants() -> int:
    """Fan out one tick per tenant (beat runs this every second)."""
    schemas = list(tenant_list().values_list("schema_name", flat=True))
    for schema_name in schemas:
        webhooks_tick_task.delay(schema_name)
    return len(schemas)


@shared_task(ignore_result=True, acks_late=False)
def webhooks_tick_task(schema_name: str) -> None:
    # One tick of a tenant at a time: a slow one is not stacked on by the next second's.
    lock = f"webhooks-tick-lock:{schema_name}"
    if not cache.add(lock, 1, 30):
        return
    token = tenant_var.set(schema_name)
    try:
        with schema_context(schema_name):
            try:
                webhooks_tick(schema_name=schema_name)
            except ProgrammingError:
                return  # a schema still being created or migrated: the next tick gets it
    finally:
        tenant_var.reset(token)
        cache.delete(lock)


@shared_task(ignore_result=True, acks_late=True)
def webhook_deliver(schema_name: str, message_id: str, token: str) -> None:
    """One attempt at one message (does nothing when another task holds it or it is done)."""
    context = tenant_var.set(schema_name)
    try:
        with schema_context(schema_name):
            webhook_message_deliver(message_id=uuid.UUID(message_id), token=uuid.UUID(token))
    finally:
        tenant_var.reset(context)
