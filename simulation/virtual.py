"""The virtual-clock simulator: a discrete-event simulation through the real services.

Arrivals, completions, wrap-up ends and abandonments are events on a simulated clock
(``callcenter.clock.VirtualClock``). The driver pops the next event, moves the clock to its instant
and calls the same services as the API and the workers (``call_create``, the simulated completion,
``wrap_up_finish``, ``call_abandon``), which write Postgres and run the Redis Lua engine at that
instant. Nothing sleeps, nothing lags: a call completes exactly at its drawn duration.

The driver learns what the services did without asking Postgres again: every simulated call they
assign (a claim, or a waiting call handed to a freed agent) is handed to the driver's event queue
as its transaction commits (``simulation.services.completions_scheduled_by``, where a live run
queues a Celery task), and a completion of one of the run's own calls locks and reads the call and
its agent once, in ``call_complete``. Only a wrap-up's end is read back (one query, when the tenant
has wrap-up). Cost per call: its claim and its completion, nothing more (see docs/simulation.md).

Reproducibility: every event sits on its own whole millisecond (an event that would share one moves
to the next free millisecond, a shift of a few milliseconds in hours), so no two agents ever tie on
their idle clock and no two calls tie in the queue. Who answers which call then follows from the
seed alone, never from agent or call ids, timing or the machine: the same seed and configuration
give the same report.
"""

from __future__ import annotations

import datetime
import heapq
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.utils import timezone

from agents.models import Agent
from agents.services import agent_set_status, wrap_up_finish
from callcenter.clock import VirtualClock, use_clock
from calls.models import Call, CallType
from calls.services import call_abandon, call_create
from routing.services import routing_config
from simulation.models import SimulationRun
from simulation.services import SIMULATOR, completions_scheduled_by, simulated_call_finish

ARRIVAL, COMPLETE, WRAP_UP_END, ABANDON = 0, 1, 2, 3
MS = datetime.timedelta(milliseconds=1)


@dataclass
class EventQueue:
    """Events ordered by (millisecond, order of scheduling); at most one event per millisecond."""

    start: datetime.datetime
    heap: list[tuple[int, int, int, str]] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)
    scheduled: int = 0

    def ms_of(self, instant: datetime.datetime) -> int:
        return math.ceil((instant - self.start) / MS)

    def push(self, at_ms: int, kind: int, subject: str) -> int:
        while at_ms in self.taken:
            at_ms += 1
        self.taken.add(at_ms)
        self.scheduled += 1
        heapq.heappush(self.heap, (at_ms, self.scheduled, kind, subject))
        return at_ms

    def pop(self) -> tuple[int, int, str]:
        at_ms, _, kind, subject = heapq.heappop(self.heap)
        self.taken.discard(at_ms)
        return at_ms, kind, subject

    def instant(self, at_ms: int) -> datetime.datetime:
        return self.start + at_ms * MS


@dataclass
class VirtualResult:
    arrivals_sent: int
    simulated_seconds: float
    wall_seconds: float
    stopped: bool


def virtual_start() -> datetime.datetime:
    """The simulated clock starts at the wall clock's current whole second (only differences of
    instants matter to the report, and whole seconds keep millisecond arithmetic exact)."""
    return timezone.now().replace(microsecond=0)


def run_virtual(
    *,
    run: SimulationRun,
    agents: list[Agent],
    total_calls: int,
    rate: float,
    no_wait_limit: bool,
    heartbeat: Callable[[int, int], bool],
) -> VirtualResult:
    """Play ``total_calls`` Poisson arrivals at ``rate`` per simulated second against ``agents``, then
    every event they cause, until nothing is left. ``heartbeat(arrivals_sent)`` is called about once
    a second of wall time; it returns False to stop early (arrivals stop, calls already there finish)."""
    config = routing_config(force=True)
    settings = config.settings
    clock = VirtualClock(virtual_start())
    events = EventQueue(start=clock.start)
    rng = np.random.default_rng(run.seed)
    call_types = sorted(config.call_types_by_slug.values(), key=lambda c: c.slug)
    weights = np.array([c.mix_weight for c in call_types], dtype=float)
    gaps = rng.exponential(1.0 / rate, size=total_calls)
    kinds = rng.choice(len(call_types), size=total_calls, p=weights / weights.sum())
    wait_limit = None if no_wait_limit else settings.max_wait_seconds
    started = time.monotonic()
    last_beat = started
    stopped = False
    sent = done = 0
    own: set[str] = set()  # this run's calls (a completion of another's would need its own run)

    def schedule_completion(call_id: uuid.UUID, expected_end: datetime.datetime) -> None:
        events.push(events.ms_of(expected_end), COMPLETE, str(call_id))

    with use_clock(clock), _commits_without_waiting_for_disk(), completions_scheduled_by(schedule_completion):
        # Every agent logs in again, one millisecond apart in name order: the idle line is the same
        # in every run, whatever the agents did before.
        for index, agent in enumerate(agents):
            clock.advance_to(events.instant(index))
            if agent.status != Agent.Status.OFFLINE:
                agent_set_status(agent=agent, status=Agent.Status.OFFLINE, force=True, actor=SIMULATOR)
            agent_set_status(agent=agent, status=Agent.Status.AVAILABLE, actor=SIMULATOR)
        first = len(agents) + 1
        offsets = np.cumsum(gaps) * 1000
        next_arrival = 0
        if total_calls:
            events.push(first + math.ceil(offsets[0]), ARRIVAL, "0")
            next_arrival = 1
        call_type_by_index: list[CallType] = [call_types[int(k)] for k in kinds]
        while events.heap:
            at_ms, kind, subject = events.pop()
            clock.advance_to(events.instant(at_ms))
            if kind == ARRIVAL:
                index = int(subject)
                # An answered call's completion is scheduled as its claim commits.
                created = call_create(
                    phone_number=f"+3469{index % 10**8:08d}",
                    call_type=call_type_by_index[index],
                    actor=SIMULATOR,
                    rng=random.Random(run.seed * 1_000_003 + index),
                    simulation_run=run,
                    simulation_sequence=index,
                ).call
                own.add(str(created.id))
                sent += 1
                if created.status in Call.TERMINAL:
                    done += 1
                _follow_waiting_call(events, created, wait_limit)
                if next_arrival < total_calls and not stopped:
                    events.push(first + math.ceil(offsets[next_arrival]), ARRIVAL, str(next_arrival))
                    next_arrival += 1
            elif kind == COMPLETE:
                # The freed agent takes a waiting call (its completion is scheduled as that commits),
                # goes to wrap-up, or idles.
                if simulated_call_finish(call_id=subject, run=run if subject in own else None):
                    done += 1
                if routing_config().settings.wrap_up_seconds > 0:
                    _follow_wrap_up(events, subject)
            elif kind == WRAP_UP_END:
                wrap_up_finish(agent_id=subject)
            elif kind == ABANDON and call_abandon(call_id=subject):
                done += 1
            if time.monotonic() - last_beat >= 1.0:
                last_beat = time.monotonic()
                if not heartbeat(sent, done) and not stopped:
                    stopped = True
                    events.heap = [e for e in events.heap if e[2] != ARRIVAL]
                    heapq.heapify(events.heap)
    return VirtualResult(
        arrivals_sent=sent,
        simulated_seconds=clock.elapsed_seconds,
        wall_seconds=time.monotonic() - started,
        stopped=stopped,
    )


@contextmanager
def _commits_without_waiting_for_disk() -> Iterator[None]:
    """A virtual run commits a few transactions per call, back to back; waiting for each commit's
    disk flush would make the disk, not the simulation, set the pace. With ``synchronous_commit``
    off (this session only) a crash may lose the last few commits of the run, never consistency."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO DEFAULT")


def _follow_waiting_call(events: EventQueue, call: Call, wait_limit: int | None) -> None:
    """A new call that waits: schedule its caller hanging up at the wait limit."""
    if call.status == Call.Status.QUEUED and call.queued_at is not None and wait_limit is not None:
        events.push(events.ms_of(call.queued_at + datetime.timedelta(seconds=wait_limit)), ABANDON, str(call.id))


def _follow_wrap_up(events: EventQueue, call_id: str) -> None:
    """A call ended with a wrap-up configured: schedule the end of its agent's wrap-up. One query."""
    state = Call.objects.filter(id=call_id).values_list("agent_id", "agent__status", "agent__wrap_up_ends_at").first()
    if state is None:
        return
    agent_id, status, wrap_up_ends_at = state
    if agent_id is not None and status == Agent.Status.WRAP_UP and wrap_up_ends_at is not None:
        events.push(events.ms_of(wrap_up_ends_at), WRAP_UP_END, str(agent_id))
