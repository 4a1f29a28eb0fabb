"""Postgres is the source of truth; Redis is rebuilt from it.

``engine_call`` runs one engine operation for the current tenant and recovers on the way:
- Redis lost the tenant's state (no epoch key: restart, flush) -> rebuild from Postgres, run again;
- the caller's agent-type list is stale -> reload the configuration, run again.

Concurrent rebuilds are serialised by a short Redis lock (``rebuild_lock``, 10 s TTL); whoever does
not get it waits for the epoch to reappear.

A rebuild must not miss a change in flight: one that has already changed Redis but not yet committed
to Postgres (a new call queued in Redis whose row is not committed yet would otherwise vanish from the
rebuilt queue while Postgres says QUEUED). So every transaction that changes the engine first takes a
per-tenant *shared* Postgres advisory lock (``engine_call`` does, held until COMMIT or ROLLBACK), and a
rebuild takes the same lock *exclusively* before it reads Postgres and keeps it until Redis is
written: it waits for the changes in flight to commit or roll back, and the changes that start
meanwhile wait for it (Postgres queues them behind the exclusive request). The wait is bounded
(``CLAIMS_WAIT_MS``): past it the rebuild goes on from a snapshot, as it did before this lock; the
partial unique constraints and conditional updates of Postgres still refuse any double assignment,
and the sweep's drift check repairs the rest (see docs/assignment.md).
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef

from agents.models import Agent
from assignment import engine
from assignment.keys import POOLS
from assignment.services.identity import instance_verify
from callcenter import clock
from callcenter.tenancy import current_schema
from calls.models import Call
from routing.services import RoutingConfig, routing_config

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AgentConflict(Exception):
    """Postgres disagrees with Redis about an agent (free or holding a call)."""


def with_repair(operation: Callable[[], T]) -> T:
    """Run a whole change (its own transaction); if Redis and Postgres disagree about an agent, the
    change rolls back, Redis is rebuilt from Postgres and the change runs once more."""
    try:
        return operation()
    except AgentConflict as conflict:
        logger.warning("agent conflict (%s); rebuilding from Postgres and retrying", conflict)
        engine_rebuild()
        return operation()


STRANDED_AFTER = datetime.timedelta(seconds=60)
# How long a rebuild waits for the tenant's engine changes in flight before it reads Postgres anyway.
CLAIMS_WAIT_MS = 2000
# First half of the two-key advisory lock that guards a tenant's engine state (b"CC" + 1). Two-key
# advisory locks live apart from the one-key (bigint) locks taken on call ids.
_ENGINE_LOCK_CLASS = 0x43430001


def engine_lock_key(schema_name: str) -> tuple[int, int]:
    """The two int4 keys of the tenant's engine advisory lock (a crc32 collision between two tenants
    only makes their rebuilds wait for each other's changes)."""
    return _ENGINE_LOCK_CLASS, zlib.crc32(schema_name.encode()) - 2**31


ENGINE_SHARED_LOCK = "engine-shared"


def engine_lock_shared_sql() -> tuple[str, list[int]]:
    """The SQL expression (and its parameters) that takes the current tenant's shared engine lock,
    for a caller that folds it into a statement of its own (one round trip less); the caller then
    calls ``engine_lock_shared_noted``."""
    return "pg_advisory_xact_lock_shared(%s, %s)", list(engine_lock_key(current_schema()))


def engine_lock_shared_noted() -> None:
    """The current transaction took the shared engine lock (through ``engine_lock_shared_sql``)."""
    connection.xact_lock_note(ENGINE_SHARED_LOCK)  # type: ignore[attr-defined]


def engine_lock_shared() -> None:
    """Inside a transaction that is about to change the engine: let a rebuild wait for its COMMIT.
    Taken once per transaction."""
    if connection.xact_lock_held(ENGINE_SHARED_LOCK):  # type: ignore[attr-defined]
        return
    expression, params = engine_lock_shared_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression}", params)
    engine_lock_shared_noted()


def _engine_lock_exclusive(schema_name: str) -> bool:
    """Inside the rebuild's transaction: wait (at most CLAIMS_WAIT_MS) until no engine change is in
    flight, and hold new ones off until COMMIT. False if the wait ran out."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{CLAIMS_WAIT_MS}ms"])
        try:
            with transaction.atomic():
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(engine_lock_key(schema_name)))
        except OperationalError as error:
            logger.warning(
                "rebuild of %s: changes still in flight after %d ms (%s)", schema_name, CLAIMS_WAIT_MS, error
            )
            return False
        finally:
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
    return True


def rebuild_input_from_postgres(*, config: RoutingConfig) -> dict[bool, engine.RebuildInput]:
    """Read the tenant's agents and open calls from one snapshot (REPEATABLE READ when this starts
    the transaction), so agents and queue are seen at the same instant; one input per pool
    (``simulated`` False and True: real and simulated traffic).

    A BUSY agent that has held no ASSIGNED call for a minute (which no committed change produces;
    it would take a bug) is made AVAILABLE again. The minute keeps this away from a claim
    committing at the same moment."""
    now = clock.now()
    stranded = Agent.objects.filter(status=Agent.Status.BUSY, status_changed_at__lt=now - STRANDED_AFTER).exclude(
        Exists(Call.objects.filter(agent_id=OuterRef("id"), status=Call.Status.ASSIGNED))
    )
    repaired = stranded.update(status=Agent.Status.AVAILABLE, idle_since=now, status_changed_at=now)
    if repaired:
        logger.warning("rebuild: %d busy agents held no call; made available", repaired)
    outermost = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        active = dict(Call.objects.filter(status=Call.Status.ASSIGNED).values_list("agent_id", "id"))
        idle: dict[bool, list[tuple[str, int, int]]] = {pool: [] for pool in POOLS}
        busy: dict[bool, list[tuple[str, int, str]]] = {pool: [] for pool in POOLS}
        other: dict[bool, list[tuple[str, int, str]]] = {pool: [] for pool in POOLS}
        queue: dict[bool, list[tuple[str, int]]] = {pool: [] for pool in POOLS}
        for agent_id, type_id, status, idle_since, pool in Agent.objects.values_list(
            "id", "agent_type_id", "status", "idle_since", "simulated"
        ):
            if agent_id in active:
                busy[pool].append((str(agent_id), type_id, str(active[agent_id])))
            elif status == Agent.Status.AVAILABLE and idle_since is not None:  # a check constraint ensures it
                idle[pool].append((str(agent_id), type_id, engine.to_ms(idle_since.timestamp())))
            elif status == Agent.Status.BUSY:
                # BUSY without an ASSIGNED call: kept out of the line until the repair above applies.
                other[pool].append((str(agent_id), type_id, Agent.Status.OFFLINE))
            else:
                other[pool].append((str(agent_id), type_id, status))
        for call_id, priority, queued_at, pool in Call.objects.filter(status=Call.Status.QUEUED).values_list(
            "id", "priority", "queued_at", "simulated"
        ):
            if queued_at is not None:
                score = engine.queue_score(priority=priority, queued_at_ms=engine.to_ms(queued_at.timestamp()))
                queue[pool].append((str(call_id), score))
    return {
        pool: engine.RebuildInput(idle=idle[pool], busy=busy[pool], other=other[pool], queue=queue[pool])
        for pool in POOLS
    }


def engine_rebuild(*, wait_seconds: float = 5.0) -> bool:
    """Rebuild the current tenant's Redis state from Postgres. Returns True if this call rebuilt it,
    False if another process did while we waited. Refuses (``ForeignEngine``) when Redis serves
    another deployment."""
    instance_verify()
    schema_name = current_schema()
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while not engine.acquire_rebuild_lock(schema_name=schema_name, token=token):
        # Someone else is rebuilding: wait until they are done (their state is then the fresh one).
        if time.monotonic() > deadline:
            raise engine.EngineUnavailable(f"rebuild of {schema_name} did not finish in {wait_seconds} s")
        time.sleep(0.01)
        if not engine.rebuild_in_progress(schema_name=schema_name) and engine.snapshot_has_epoch(
            schema_name=schema_name
        ):
            return False
    try:
        config = routing_config(force=True)
        if not connection.in_atomic_block:
            # Inside a caller's transaction (the engine lost its state in the middle of a change) the
            # wait is skipped: that transaction holds the shared lock, and so may the others waiting
            # for this rebuild.
            with transaction.atomic():
                if _engine_lock_exclusive(schema_name):
                    _rebuild_from_postgres(schema_name=schema_name, config=config)
                    return True
        _rebuild_from_postgres(schema_name=schema_name, config=config)
        return True
    finally:
        engine.release_rebuild_lock(schema_name=schema_name, token=token)


def _rebuild_from_postgres(*, schema_name: str, config: RoutingConfig) -> None:
    states = rebuild_input_from_postgres(config=config)
    for pool, state in states.items():
        engine.rebuild(
            schema_name=schema_name,
            state=state,
            epoch=uuid.uuid4().hex,
            type_ids=config.type_ids,
            simulated=pool,
        )
        logger.info(
            "rebuilt engine state (%s): %d idle, %d busy, %d other, %d queued",
            "simulated" if pool else "real",
            len(state.idle),
            len(state.busy),
            len(state.other),
            len(state.queue),
        )


def engine_call(operation: Callable[[RoutingConfig], T], *, attempts: int = 3, locked: bool = False) -> T:
    """Run ``operation(config)`` against the engine, recovering from a lost state or stale types.
    Inside a transaction it first takes the tenant's shared engine lock (see the module docstring),
    unless the caller already holds it (``locked``)."""
    if connection.in_atomic_block and not locked:
        engine_lock_shared()
    config = routing_config()
    for attempt in range(attempts):
        try:
            return operation(config)
        except engine.EngineStateLost:
            if attempt == attempts - 1:
                raise
            engine_rebuild()
            config = routing_config()
        except engine.EngineStaleTypes:
            if attempt == attempts - 1:
                raise
            config = routing_config(force=True)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Drift:
    """What Redis and Postgres disagree on for a tenant (empty when they agree)."""

    agents: dict[str, tuple[str, str]]  # agent_id -> (postgres view, redis view)
    queue_missing_in_redis: list[str]
    queue_extra_in_redis: list[str]

    def __bool__(self) -> bool:
        return bool(self.agents or self.queue_missing_in_redis or self.queue_extra_in_redis)

    def items(self) -> set[str]:
        """Each difference as one comparable string."""
        found = {f"agent:{agent}:{views[0]}|{views[1]}" for agent, views in self.agents.items()}
        found |= {f"missing:{call}" for call in self.queue_missing_in_redis}
        found |= {f"extra:{call}" for call in self.queue_extra_in_redis}
        return found

    def summary(self) -> str:
        return (
            f"{len(self.agents)} agents differ, {len(self.queue_missing_in_redis)} queued calls missing in Redis, "
            f"{len(self.queue_extra_in_redis)} extra in Redis"
        )


def engine_drift() -> Drift:
    """Compare Redis with Postgres for the current tenant, pool by pool (real and simulated traffic):
    an agent or call found in the other pool's keys is drift too."""
    drifts = [_pool_drift(simulated=pool) for pool in POOLS]
    return Drift(
        agents={agent: views for drift in drifts for agent, views in drift.agents.items()},
        queue_missing_in_redis=sorted(call for drift in drifts for call in drift.queue_missing_in_redis),
        queue_extra_in_redis=sorted(call for drift in drifts for call in drift.queue_extra_in_redis),
    )


def _pool_drift(*, simulated: bool) -> Drift:
    """One pool: a consistent Redis snapshot, then Postgres."""
    snap = engine.snapshot(schema_name=current_schema(), simulated=simulated)
    active = {str(a): str(c) for a, c in Call.objects.filter(status=Call.Status.ASSIGNED).values_list("agent_id", "id")}
    agents: dict[str, tuple[str, str]] = {}
    idle_ids = {agent_id for agent_id, _ in snap.idle}
    seen: set[str] = set()
    for agent_id, status in Agent.objects.filter(simulated=simulated).values_list("id", "status"):
        key = str(agent_id)
        seen.add(key)
        pg_view = f"BUSY:{active[key]}" if key in active else status
        redis_status = snap.statuses.get(key, "ABSENT")
        redis_view = f"BUSY:{snap.calls.get(key, '')}" if redis_status == "BUSY" else redis_status
        if redis_status == "AVAILABLE" and key not in idle_ids:
            redis_view = "AVAILABLE(not in idle set)"
        if pg_view != redis_view:
            agents[key] = (pg_view, redis_view)
    for key, status in snap.statuses.items():
        if key not in seen:
            agents[key] = ("ABSENT", status)
    queued = {
        str(c) for c in Call.objects.filter(status=Call.Status.QUEUED, simulated=simulated).values_list("id", flat=True)
    }
    in_redis = set(snap.queue)
    return Drift(
        agents=agents,
        queue_missing_in_redis=sorted(queued - in_redis),
        queue_extra_in_redis=sorted(in_redis - queued),
    )
