"""A call's domain events: the payload is the call as the REST API shows it outside the detail view
(phone number masked), so that consumers never see more than a list of calls would."""

from __future__ import annotations

from typing import Any

from callcenter.formatting import api_datetime
from calls.models import Call
from events import registry
from events.services import event_record
from routing.services import routing_config

EVENT_OF_STATUS = {
    Call.Status.QUEUED: registry.CALL_QUEUED,
    Call.Status.ASSIGNED: registry.CALL_ASSIGNED,
    Call.Status.COMPLETED: registry.CALL_COMPLETED,
    Call.Status.CANCELLED: registry.CALL_CANCELLED,
    Call.Status.ABANDONED: registry.CALL_ABANDONED,
    Call.Status.SATURATED: registry.CALL_SATURATED,
}


def call_payload(call: Call, *, call_type_slug: str | None = None) -> dict[str, Any]:
    """The fields of ``CallOutputSerializer``, without a query when ``call_type_slug`` is given."""
    return {
        "id": str(call.id),
        "phone_number": call.phone_number_masked,
        "call_type": call_type_slug if call_type_slug is not None else call.call_type.slug,
        "priority": call.priority,
        "external_id": call.external_id,
        "status": str(call.status),
        "end_reason": call.end_reason,
        "agent_id": str(call.agent_id) if call.agent_id else None,
        "created_at": api_datetime(call.created_at),
        "queued_at": api_datetime(call.queued_at),
        "assigned_at": api_datetime(call.assigned_at),
        "ended_at": api_datetime(call.ended_at),
        "assignment_time_ms": call.assignment_time_ms,
        "planned_duration_seconds": call.planned_duration_seconds,
        "expected_end_at": api_datetime(call.expected_end_at),
        "actual_duration_seconds": call.actual_duration_seconds,
        "outcome": call.outcome,
        "simulated": call.simulated,
    }


def call_event_record(call: Call, *, call_type_slug: str | None = None) -> None:
    """Record the event of the call's (new) status: call.queued, call.assigned, ... Call inside the
    change's transaction, once the call's fields hold their new values. The call type's slug comes
    from the loaded relation, else from the cached routing configuration (no query)."""
    if call_type_slug is None and not Call.call_type.is_cached(call):
        call_type = routing_config().call_types_by_id.get(call.call_type_id)
        call_type_slug = call_type.slug if call_type is not None else None
    event_record(
        event_type=EVENT_OF_STATUS[Call.Status(call.status)],
        object_type="call",
        object_id=call.id,
        subject=call,
        payload=lambda: call_payload(call, call_type_slug=call_type_slug),
    )
