"""Health as orchestrators expect it.

- Liveness (``/health/live``): the process answers; nothing else is checked, so a database outage
  never makes an orchestrator restart healthy web processes.
- Readiness (``/health``): Postgres and Redis answer (one round trip each, milliseconds). 503 when
  either is down. Celery workers and beat are reported from the heartbeats they write to Redis
  (``callcenter.celery``), never from a blocking ping: their absence makes the answer ``degraded``,
  still 200, because the web itself serves requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from assignment import engine
from callcenter.db import watchdog

HEALTH_DATABASE_SECONDS = 1.0

# A worker writes its heartbeat every HEARTBEAT_SECONDS; one not seen for HEARTBEAT_MAX_AGE_SECONDS
# (three missed beats) is gone or stuck.
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_MAX_AGE_SECONDS = 3 * HEARTBEAT_SECONDS


def timed(check: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check() or {}
        return {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 2), **detail}
    except Exception as exc:  # a health check reports every failure, whatever it is
        return {"status": "down", "ms": round((time.perf_counter() - started) * 1000, 2), "error": str(exc)[:200]}


def check_database() -> dict[str, Any] | None:
    # A second at most, whatever the network does: /health must answer, "down" if need be.
    with watchdog.at_most(HEALTH_DATABASE_SECONDS), connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def check_redis() -> dict[str, Any] | None:
    engine.ping()
    return None


def check_instance() -> dict[str, Any] | None:
    """Redis serves this deployment (the database's instance id), not another one."""
    from assignment.services.identity import instance_verify

    with watchdog.at_most(HEALTH_DATABASE_SECONDS):
        instance_verify()
    return None


def heartbeat_checks(*, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Workers and beat from their heartbeats (one Redis read). ``up`` when at least one was seen
    within ``HEARTBEAT_MAX_AGE_SECONDS``."""
    try:
        ages = engine.heartbeats_read(now=time.time() if now is None else now)
    except Exception as exc:  # Redis down: nothing can be said about the processes behind it
        error = f"heartbeats unreadable: {str(exc)[:150]}"
        return {"workers": {"status": "unknown", "error": error}, "beat": {"status": "unknown", "error": error}}
    checks: dict[str, dict[str, Any]] = {}
    for kind in ("workers", "beat"):
        prefix = "worker:" if kind == "workers" else "beat:"
        mine = {name.removeprefix(prefix): age for name, age in ages.items() if name.startswith(prefix)}
        alive = sorted(name for name, age in mine.items() if age <= HEARTBEAT_MAX_AGE_SECONDS)
        check: dict[str, Any] = {"status": "up" if alive else "down", "count": len(alive)}
        if mine:
            check["last_seen_seconds_ago"] = round(min(mine.values()), 1)
        if not alive:
            check["error"] = f"no heartbeat in the last {HEARTBEAT_MAX_AGE_SECONDS:g} s"
        checks[kind] = check
    return checks


def health_report() -> dict[str, Any]:
    """``ok`` (200), ``degraded`` (200: workers or beat missing) or ``unavailable`` (503)."""
    checks = {"database": timed(check_database), "redis": timed(check_redis), **heartbeat_checks()}
    if checks["database"]["status"] == "up" and checks["redis"]["status"] == "up":
        checks["redis"] = timed(check_instance)
    down = [name for name, result in checks.items() if result["status"] != "up"]
    status = "unavailable" if "database" in down or "redis" in down else "degraded" if down else "ok"
    return {"status": status, "down": down, "checks": checks}
