"""Assignment metrics kept in Redis, so that every web and worker process contributes and any one
of them can report them (``/system/metrics`` and Prometheus ``/metrics``).

Per tenant (keys from ``assignment.keys``):
- ``m:latency``: the last ``LATENCY_SAMPLES`` assignment times (ms), newest first, for percentiles;
- ``m:hist``: a cumulative-ready histogram of every assignment time (bucket counts, sum, count);
- ``m:last``: the last assignment time (ms).
One pipelined round trip per assignment, after the commit (not inside ``assignment_time_ms``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from redis.exceptions import RedisError

from assignment import engine
from assignment.keys import TenantKeys
from events.registry import Event

logger = logging.getLogger(__name__)

LATENCY_SAMPLES = 10_000
BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000)


def observe_assignment(*, schema_name: str, milliseconds: float) -> None:
    keys = TenantKeys(schema_name)
    bucket = next((str(b) for b in BUCKETS_MS if milliseconds <= b), "+Inf")
    try:
        pipe = engine.client().pipeline(transaction=False)
        pipe.lpush(keys.metric("latency"), round(milliseconds, 3))
        pipe.ltrim(keys.metric("latency"), 0, LATENCY_SAMPLES - 1)
        pipe.hincrby(keys.metric("hist"), bucket, 1)
        pipe.hincrby(keys.metric("hist"), "count", 1)
        pipe.hincrbyfloat(keys.metric("hist"), "sum", milliseconds)
        pipe.set(keys.metric("last"), round(milliseconds, 3))
        pipe.execute()
    except RedisError:
        logger.warning("could not record an assignment time (Redis unreachable)")


def latency_summary(*, schema_name: str) -> dict[str, Any]:
    keys = TenantKeys(schema_name)
    pipe = engine.client().pipeline(transaction=False)
    pipe.lrange(keys.metric("latency"), 0, -1)
    pipe.get(keys.metric("last"))
    samples, last = pipe.execute()
    values = np.asarray([float(v) for v in samples], dtype=float)
    if not len(values):
        return {"samples": 0, "last_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    p50, p95, p99 = (round(float(x), 3) for x in np.percentile(values, [50, 95, 99]))
    return {
        "samples": len(values),
        "last_ms": float(last) if last is not None else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": round(float(values.max()), 3),
    }


def latency_histogram(*, schema_name: str) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) buckets in seconds, and the sum in seconds."""
    raw = engine.client().hgetall(TenantKeys(schema_name).metric("hist"))
    cumulative = 0.0
    buckets = []
    for bound in BUCKETS_MS:
        cumulative += float(raw.get(str(bound), 0))
        buckets.append((repr(bound / 1000), cumulative))
    cumulative += float(raw.get("+Inf", 0))
    buckets.append(("+Inf", cumulative))
    return buckets, float(raw.get("sum", 0.0)) / 1000


def observe_assigned_event(event: Event) -> None:
    """On-commit consumer of call.assigned: the assignment's latency joins the tenant's metrics (only
    for a committed assignment; a crash before it loses one sample, which a metric can afford)."""
    observe_assignment(schema_name=event.tenant, milliseconds=event.payload.get("assignment_time_ms") or 0.0)
