"""The periodic sweep of one tenant (Celery beat, every second): nothing waits or stays stuck
because a task was lost, a worker died or Redis restarted.

The engine runs the steps that the apps register (``sweep_step_register``, from their ``ready()``),
in their ``order``, so that it never imports the code that owns the work:

10. ``calls``: waiting calls past ``max_wait_seconds`` become ABANDONED.
20. ``agents``: real agents' wrap-ups that are over end (the agent takes the next call or idles).
30. ``simulation``: simulated calls past their expected end are completed (their Celery task was
    lost, or no worker is running), and simulated agents' wrap-ups end, except those of a
    virtual-clock run, whose instants are simulated ones, left to that run's driver.

Then the engine's own:
- Repair: idle agents and waiting calls are paired (only possible after an undone claim).
- Drift: if Redis and Postgres disagree twice in a row (a second apart, so in-flight changes are
  not mistaken for drift), Redis is rebuilt from Postgres.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from django.core.cache import cache

from assignment.services.assign import match_waiting_calls
from assignment.services.identity import instance_verify
from assignment.services.recovery import engine_drift, engine_rebuild, with_repair
from callcenter import clock
from callcenter.tenancy import current_schema

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class SweepReport:
    abandoned: int = 0
    wrap_ups_ended: int = 0
    paired: int = 0
    overdue_completed: int = 0
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepStep:
    """``items(now)`` yields one change per item (a callable returning True when it did something);
    each that did adds one to the report's ``counter``."""

    name: str
    counter: str
    order: int
    items: Callable[[datetime.datetime], Iterable[Callable[[], bool]]]


_steps: dict[str, SweepStep] = {}


def sweep_step_register(step: SweepStep) -> None:
    """Add a step to every sweep (idempotent per name: ``ready()`` may run twice)."""
    if not hasattr(SweepReport(), step.counter):
        raise ValueError(f"SweepReport has no counter {step.counter!r}")
    _steps[step.name] = step


def sweep_steps() -> list[SweepStep]:
    return sorted(_steps.values(), key=lambda step: step.order)


def sweep_tenant(*, now: datetime.datetime | None = None, check_drift: bool = True) -> SweepReport:
    """One sweep of the current tenant. Each item is its own change: one that fails (a conflict is
    repaired by a rebuild and retried once; anything else is logged) never stops the others, and
    the drift check always runs last."""
    # Never sweep another deployment's Redis (raises ForeignEngine, which says why).
    instance_verify()
    now = now or clock.now()
    report = SweepReport()
    try:
        for step in sweep_steps():
            for change in step.items(now):
                if _item(report, step.name, change):
                    setattr(report, step.counter, getattr(report, step.counter) + 1)
        report.paired = _item(report, "match", match_waiting_calls) or 0
    finally:
        if check_drift:
            report.rebuilt = _repair_drift(report)
    return report


def _item(report: SweepReport, what: str, operation: Callable[[], T]) -> T | None:
    try:
        return with_repair(operation)
    except Exception as error:  # one stuck item must not stop the sweep of the rest
        logger.exception("sweep: %s failed", what)
        report.notes.append(f"{what}: {error}")
        return None


def _repair_drift(report: SweepReport) -> bool:
    """Rebuild when some difference between Redis and Postgres is seen in two consecutive sweeps.
    Changes in flight show up once and are gone the next second; a lasting difference stays, even
    while new short-lived ones come and go around it."""
    drift = engine_drift()
    key = f"sweep-drift:{current_schema()}"
    items = drift.items()
    if not items:
        cache.delete(key)
        return False
    previous = set(cache.get(key) or ())
    lasting = items & previous
    if not lasting:
        cache.set(key, sorted(items), 30)
        return False
    logger.warning("engine drift persisted (%s); rebuilding from Postgres", drift.summary())
    report.notes.append(drift.summary())
    cache.delete(key)
    engine_rebuild()
    return True
