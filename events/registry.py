"""Who reacts to which domain event, and when. One explicit registry: the code that records an event
never imports the code that reacts to it; a consumer subscribes from its own app's ``ready()``.

Three phases, chosen per consumer:

- ``IN_TRANSACTION``: runs while the event is recorded, inside the change's transaction, before the
  outbox row is written. It is part of the change: it may complete the subject (the event's payload
  is taken after it ran) and its failure rolls the change back. For what must be true whenever the
  change is (a simulated call's planned duration). Keep it cheap and free of I/O outside Postgres.
- ``ON_COMMIT``: runs after the transaction commits, in the same process (``transaction.on_commit``,
  robust: a failing consumer is logged and does not stop the others). For what may be lost in a
  crash and must never run for a rolled-back change (a Prometheus observation).
- ``OUTBOX``: runs later, from the outbox rows (``events.services.outbox_dispatch``), in whatever
  process dispatches them. For slow I/O that must survive a crash and be retried (webhooks).
"""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Every event type the services record (SPEC §8). A consumer of another type is a typo.
CALL_QUEUED = "call.queued"
CALL_ASSIGNED = "call.assigned"
CALL_COMPLETED = "call.completed"
CALL_CANCELLED = "call.cancelled"
CALL_ABANDONED = "call.abandoned"
CALL_SATURATED = "call.saturated"
AGENT_STATUS_CHANGED = "agent.status_changed"
CONFIG_CHANGED = "config.changed"
EVENT_TYPES = frozenset(
    {
        CALL_QUEUED,
        CALL_ASSIGNED,
        CALL_COMPLETED,
        CALL_CANCELLED,
        CALL_ABANDONED,
        CALL_SATURATED,
        AGENT_STATUS_CHANGED,
        CONFIG_CHANGED,
    }
)


class Phase(enum.StrEnum):
    IN_TRANSACTION = "in_transaction"
    ON_COMMIT = "on_commit"
    OUTBOX = "outbox"


@dataclass(slots=True)
class Event:
    """One domain event. ``subject`` is the live model instance (in-process consumers only; the outbox
    keeps ``payload``); ``sequence`` is known once the outbox row is written."""

    type: str
    tenant: str
    object_type: str
    object_id: str
    occurred_at: datetime.datetime
    subject: Any = None
    payload: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    sequence: int | None = None


Consumer = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class Subscription:
    event_type: str
    phase: Phase
    consumer: Consumer
    name: str


_subscriptions: dict[str, list[Subscription]] = {}


def subscribe(event_type: str, *, phase: Phase, consumer: Consumer, name: str | None = None) -> Subscription:
    """Register ``consumer`` for ``event_type`` (idempotent per name: ``ready()`` may run twice)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    subscription = Subscription(event_type, phase, consumer, name or f"{consumer.__module__}.{consumer.__qualname__}")
    current = _subscriptions.setdefault(event_type, [])
    current[:] = [s for s in current if s.name != subscription.name] + [subscription]
    return subscription


def unsubscribe(subscription: Subscription) -> None:
    current = _subscriptions.get(subscription.event_type, [])
    current[:] = [s for s in current if s.name != subscription.name]


def consumers(event_type: str, phase: Phase) -> list[Consumer]:
    return [s.consumer for s in _subscriptions.get(event_type, ()) if s.phase == phase]


def subscriptions() -> list[Subscription]:
    """Every subscription, for the docs and the tests."""
    return [s for subs in _subscriptions.values() for s in subs]
