"""Recording domain events: one outbox row per event, in the transaction of the change.

The hot path pays one INSERT per change, however many events it records: inside ``events_batch()``
events are buffered and written together when the block ends (still inside the transaction); outside
a batch each event is written at once. The per-object ``sequence`` is computed by that same
statement (``MAX(sequence) + 1`` over the unique index), so no extra round trip is needed.

Invariant: a change and its events commit or roll back together. Two events of one object get
consecutive sequence numbers because every change of an object holds that object's row lock (a
conditional UPDATE or ``select_for_update``) while it records them; configuration changes hold the
routing settings row. The unique constraint turns a violation of that rule into an error instead of
a silent twin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from callcenter import clock
from callcenter.tenancy import current_schema
from events.models import OutboxEvent
from events.registry import EVENT_TYPES, Event, Phase, consumers
from events.selectors import outbox_pending

logger = logging.getLogger(__name__)

_batch: ContextVar[list[Event] | None] = ContextVar("events_batch", default=None)


def event_record(
    *,
    event_type: str,
    object_type: str,
    object_id: object,
    subject: Any,
    payload: Callable[[], dict[str, Any]],
) -> Event:
    """Record that ``event_type`` happened to ``subject`` (call inside the change's transaction).

    In-transaction consumers run first and may complete ``subject``; then ``payload()`` is taken (the
    object as the API shows it) and the outbox row is written, now or at the end of the batch."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event = Event(
        type=event_type,
        tenant=current_schema(),
        object_type=object_type,
        object_id=str(object_id),
        occurred_at=clock.now(),
        subject=subject,
    )
    for consumer in consumers(event_type, Phase.IN_TRANSACTION):
        consumer(event)
    event.payload = payload()
    pending = _batch.get()
    if pending is not None:
        pending.append(event)
    else:
        _write([event])
    return event


@contextmanager
def events_batch() -> Iterator[None]:
    """Buffer the events recorded inside the block and write them in one INSERT when it ends (call
    inside the change's transaction). Nested batches join the outermost one. An exception discards
    the buffer: the transaction rolls back anyway."""
    if _batch.get() is not None:
        yield
        return
    pending: list[Event] = []
    token = _batch.set(pending)
    try:
        yield
    finally:
        _batch.reset(token)
    if pending:
        _write(pending)


def _write(events: list[Event]) -> None:
    """One INSERT for all ``events``, numbering each object's events after its last recorded one."""
    quote = connection.ops.quote_name
    table = quote(OutboxEvent._meta.db_table)
    rows = []
    params: list[Any] = []
    now = clock.now()
    for order, event in enumerate(events):
        rows.append("(%s::uuid, %s, %s::timestamptz, %s, %s, %s, %s::jsonb, %s::int)")
        params += [
            event.id,
            event.type,
            event.occurred_at,
            event.tenant,
            event.object_type,
            event.object_id,
            json.dumps(event.payload, cls=DjangoJSONEncoder),
            order,
        ]
    sql = f"""
        INSERT INTO {table} (id, type, occurred_at, tenant, object_type, object_id, sequence, payload,
                             created_at, updated_at)
        SELECT v.id, v.type, v.occurred_at, v.tenant, v.object_type, v.object_id,
               COALESCE((SELECT MAX(o.sequence) FROM {table} o
                         WHERE o.object_type = v.object_type AND o.object_id = v.object_id), 0)
               + ROW_NUMBER() OVER (PARTITION BY v.object_type, v.object_id ORDER BY v.ord),
               v.payload, %s, %s
        FROM (VALUES {", ".join(rows)}) AS v(id, type, occurred_at, tenant, object_type, object_id, payload, ord)
        RETURNING id, sequence
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *params])
        sequences = {str(row_id): sequence for row_id, sequence in cursor.fetchall()}
    for event in events:
        event.sequence = sequences[str(event.id)]
        for consumer in consumers(event.type, Phase.ON_COMMIT):
            transaction.on_commit(_bind(consumer, event), robust=True)


def _bind(consumer: Callable[[Event], None], event: Event) -> Callable[[], None]:
    return lambda: consumer(event)


def outbox_dispatch(*, limit: int = 500) -> int:
    """Hand the current tenant's undispatched events, oldest first, to the outbox consumers, and mark
    them dispatched, in one transaction. A consumer that raises rolls the run back: its events are
    offered again next time, so outbox consumers must be idempotent (the event id is their key).
    Rows are locked with SKIP LOCKED, so two dispatchers never take the same event. Returns events
    dispatched. Nothing schedules it yet: the webhook sender will, with its own task."""
    dispatched = 0
    with transaction.atomic():
        for row in outbox_pending(limit=limit).select_for_update(skip_locked=True):
            event = Event(
                id=row.id,
                type=row.type,
                tenant=row.tenant,
                object_type=row.object_type,
                object_id=row.object_id,
                occurred_at=row.occurred_at,
                payload=row.payload,
                sequence=row.sequence,
            )
            for consumer in consumers(row.type, Phase.OUTBOX):
                consumer(event)
            OutboxEvent.objects.filter(id=row.id).update(dispatched_at=clock.now())
            dispatched += 1
    return dispatched
