"""The one clock that services and the engine read "now" from.

``now()`` is the wall clock (``django.utils.timezone.now``) unless a ``VirtualClock`` is active in
the current context (``with use_clock(clock): ...``): then it is the clock's simulated instant,
which only moves when its owner advances it. The virtual-clock simulator (``simulation.virtual``)
drives the real services, Postgres and the Redis engine at simulated instants this way, with no
sleeping and no lag. The clock lives in a context variable, so a virtual run in one thread never
changes the time seen by a request or a task running beside it.

Wall-clock measurements (assignment latency, ``perf_counter``) and bookkeeping columns
(``updated_at``) stay on real time on purpose: they describe the machine, not the simulated world.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone


class VirtualClock:
    """A simulated clock at whole microseconds: ``start`` plus an offset that only moves forward."""

    def __init__(self, start: datetime.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a virtual clock starts at an aware datetime")
        self.start = start
        self._offset = datetime.timedelta(0)

    def now(self) -> datetime.datetime:
        return self.start + self._offset

    @property
    def elapsed_seconds(self) -> float:
        return self._offset.total_seconds()

    def advance_to(self, instant: datetime.datetime) -> None:
        """Move to ``instant``; a clock never goes back."""
        if instant < self.now():
            raise ValueError(f"a clock never goes back ({instant} < {self.now()})")
        self._offset = instant - self.start


_active: ContextVar[VirtualClock | None] = ContextVar("virtual_clock", default=None)


def now() -> datetime.datetime:
    """The current instant: the active virtual clock's, else the wall clock's."""
    clock = _active.get()
    return timezone.now() if clock is None else clock.now()


def is_virtual() -> bool:
    return _active.get() is not None


@contextmanager
def use_clock(clock: VirtualClock) -> Iterator[VirtualClock]:
    """Make ``clock`` the source of ``now()`` in this context until the block ends."""
    token = _active.set(clock)
    try:
        yield clock
    finally:
        _active.reset(token)
