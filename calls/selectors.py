from __future__ import annotations

import datetime
import uuid

from django.db.models import DurationField, F, Func, Q, QuerySet, Value

from calls.models import Call, CallType


def call_list(
    *,
    status: str | None = None,
    call_type: str | None = None,
    agent_id: str | None = None,
    created_after: datetime.datetime | None = None,
    created_before: datetime.datetime | None = None,
) -> QuerySet[Call]:
    calls = Call.objects.select_related("call_type", "agent").order_by("-created_at", "id")
    if status:
        calls = calls.filter(status=status)
    if call_type:
        # By the type's id, not its slug through a join: then the planner can use
        # call_type_created_idx and knows how rare the type is (docs/performance-scale.md).
        type_id = CallType.objects.filter(slug=call_type).values_list("id", flat=True).first()
        calls = calls.filter(call_type_id=type_id) if type_id is not None else calls.none()
    if agent_id:
        calls = calls.filter(agent_id=agent_id)
    if created_after:
        calls = calls.filter(created_at__gte=created_after)
    if created_before:
        calls = calls.filter(created_at__lt=created_before)
    return calls


def call_get(*, call_id: uuid.UUID | str) -> Call | None:
    return Call.objects.select_related("call_type", "agent").filter(id=call_id).first()


def call_find_retry(*, idempotency_key: str | None, external_id: str | None) -> Call | None:
    """The call an integrator's retry refers to, by Idempotency-Key first, then external_id. A
    SATURATED call was refused, so a retry after it is a new attempt, not a replay."""
    if not idempotency_key and not external_id:
        return None
    calls = Call.objects.select_related("call_type", "agent").exclude(status=Call.Status.SATURATED)
    if idempotency_key:
        found = calls.filter(idempotency_key=idempotency_key).first()
        if found is not None:
            return found
    if external_id:
        return calls.filter(external_id=external_id).first()
    return None


# SimulationRun.Clock.VIRTUAL: such a run is driven by its own process at simulated instants.
VIRTUAL_CLOCK = "virtual"


def calls_waiting_too_long(*, now: datetime.datetime, max_wait_seconds: int) -> QuerySet[Call, uuid.UUID]:
    """Waiting calls past the wait limit. A simulated call's limit is in simulated seconds: it waits
    ``max_wait_seconds / time_scale`` real seconds."""
    real_limit = now - datetime.timedelta(seconds=max_wait_seconds)
    simulated_limit = Value(now) - Func(
        Value(float(max_wait_seconds)) / F("simulation_run__time_scale"),
        template="make_interval(secs => %(expressions)s)",
        output_field=DurationField(),
    )
    return (
        Call.objects.filter(status=Call.Status.QUEUED)
        .exclude(simulation_run__clock=VIRTUAL_CLOCK)  # its driver abandons it at its simulated instant
        .exclude(simulation_run__settings_overrides__has_key="max_wait_seconds")  # run without a wait limit
        .filter(
            Q(simulation_run__isnull=True, queued_at__lte=real_limit)
            | Q(simulation_run__isnull=False, queued_at__lte=simulated_limit)
        )
        .order_by("queued_at")
        .values_list("id", flat=True)
    )
