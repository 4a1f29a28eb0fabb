"""Reachability checks for /health and the status endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from assignment import engine
from callcenter.db import watchdog

HEALTH_DATABASE_SECONDS = 1.0


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


def check_workers(timeout: float = 1.0) -> dict[str, Any] | None:
    from callcenter.celery import app

    # limit=1: answer as soon as one worker replies instead of waiting out the whole timeout.
    replies = app.control.ping(timeout=timeout, limit=1) or []
    if not replies:
        raise RuntimeError("no Celery worker answered")
    return {"workers": len(replies)}


def check_workers_cached(seconds: int = 5) -> dict[str, Any]:
    """The workers check, shared by every process for a few seconds (a ping costs up to a second)."""
    from django.core.cache import cache

    result = cache.get("health:workers")
    if result is None:
        result = timed(check_workers)
        cache.set("health:workers", result, seconds)
    return dict(result)


def health_report() -> dict[str, Any]:
    checks = {"database": timed(check_database), "redis": timed(check_redis)}
    checks["workers"] = (
        timed(check_workers)
        if checks["redis"]["status"] == "up"
        else {
            "status": "down",
            "error": "broker (Redis) unreachable",
        }
    )
    down = [name for name, result in checks.items() if result["status"] != "up"]
    return {"status": "ok" if not down else "unavailable", "down": down, "checks": checks}
