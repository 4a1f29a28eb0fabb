"""Handing calls to agents: a new call's claim, and a waiting call given to a freed agent.

Redis decides, Postgres records. Invariant: a call is recorded ASSIGNED to an agent only after the
engine handed it that agent, and only if Postgres agrees the agent is free (conditional update) and
holds no other call (partial unique constraints). When Postgres refuses, the claim is undone in
Redis, the tenant's Redis state is rebuilt from Postgres, and the claim runs again.

Locking policy: a new call's transaction takes ``pg_advisory_xact_lock`` on the call id before its
claim. A freed agent that pops a waiting call whose row is not visible yet (its creator has not
committed) waits on that lock, then looks again: the call was either committed or rolled back.
"""

from __future__ import annotations

import datetime
import functools
import logging
import random
import time
import uuid

from django.db import IntegrityError, connection, transaction

from agents.events import agent_status_changed
from agents.models import Agent
from assignment import engine
from assignment.keys import POOLS
from assignment.models import Assignment, Strategy
from assignment.services.recovery import (
    AgentConflict,
    engine_call,
    engine_lock_shared_noted,
    engine_lock_shared_sql,
    engine_rebuild,
)
from callcenter import clock
from callcenter.db.returning import update_returning
from callcenter.db.writes import insert
from callcenter.tenancy import current_schema
from calls.events import call_event_record
from calls.models import Call
from events.services import events_batch
from routing.services import RoutingConfig, routing_config

logger = logging.getLogger(__name__)

MAX_CLAIM_ATTEMPTS = 3
_AGENT_CONSTRAINTS = ("call_one_active_per_agent", "assignment_open_per_agent", "assignment_open_per_call")


def advisory_lock_call(call_id: object, *, engine_shared: bool = False) -> None:
    """Held until the end of the current transaction; see the module docstring. With
    ``engine_shared`` the tenant's shared engine lock (``recovery.engine_lock_shared``) is taken in
    the same round trip, first."""
    key = int(str(call_id).replace("-", "")[:15], 16)  # 60 bits: fits a bigint
    with connection.cursor() as cursor:
        if engine_shared:
            expression, params = engine_lock_shared_sql()
            cursor.execute(f"SELECT {expression}, pg_advisory_xact_lock(%s)", [*params, key])
            engine_lock_shared_noted()
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _is_agent_conflict(error: IntegrityError) -> bool:
    return any(name in str(error) for name in _AGENT_CONSTRAINTS)


def assign_new_call(*, call: Call, config: RoutingConfig, received_at: float, rng: random.Random | None = None) -> Call:
    """Claim an agent for an unsaved ``call`` and record the result (ASSIGNED, QUEUED or SATURATED)
    in one transaction. If that transaction fails, the claim is undone in Redis before re-raising."""
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        claimed: engine.ClaimResult | None = None
        # One instant for Redis's queue score and Postgres's timestamps, so a rebuild orders alike.
        now = clock.now()
        used = {"strategy": config.settings.strategy}
        try:
            with transaction.atomic():
                advisory_lock_call(call.id, engine_shared=True)

                def run(
                    cfg: RoutingConfig, used: dict[str, str] = used, now: datetime.datetime = now
                ) -> engine.ClaimResult:
                    used["strategy"] = cfg.settings.strategy
                    return engine.claim(
                        schema_name=current_schema(),
                        call_id=str(call.id),
                        strategy=cfg.settings.strategy,
                        priority=call.priority,
                        queued_at_ms=engine.to_ms(now.timestamp()),
                        max_queue_length=cfg.settings.max_queue_length,
                        type_ids=cfg.type_ids,
                        p_ok_by_type=cfg.p_ok_by_agent_type(call.call_type_id),
                        rng=rng,
                        simulated=call.simulated,
                    )

                claimed = engine_call(run, locked=True)
                _record_claim(
                    call=call,
                    claimed=claimed,
                    strategy=used["strategy"],
                    received_at=received_at,
                    now=now,
                    config=config,
                )
            return call
        except AgentConflict:
            # Redis and Postgres disagree about that agent: the rebuild (which does not see this
            # rolled-back call) sets both the agent and the queue right; no undo that could hand
            # the agent on first.
            logger.warning("claim conflict on attempt %d: Redis handed out a busy agent; rebuilding", attempt + 1)
            engine_rebuild()
        except IntegrityError as error:
            if not _is_agent_conflict(error):
                _undo(call=call, claimed=claimed)
                raise
            logger.warning("claim conflict on attempt %d (%s); rebuilding", attempt + 1, error)
            engine_rebuild()
        except BaseException:
            _undo(call=call, claimed=claimed)
            raise
        call._state.adding = True
    raise engine.EngineUnavailable("could not record a claim after repeated conflicts")


def _record_claim(
    *,
    call: Call,
    claimed: engine.ClaimResult,
    strategy: str,
    received_at: float,
    now: datetime.datetime,
    config: RoutingConfig,
) -> None:
    """Record the engine's decision: the call's row (inserted last) and its events, in one batch
    (one INSERT for the outbox). In-transaction consumers of call.assigned (a simulated call's
    planned duration) complete the call before its row is written."""
    # A retried attempt starts from a clean slate.
    call.agent_id, call.assigned_at, call.queued_at, call.ended_at = None, None, None, None
    call.end_reason, call.assignment_time_ms = "", None
    call.planned_duration_seconds, call.expected_end_at = None, None
    call.created_at = now
    with events_batch():
        if claimed.outcome == "ASSIGNED":
            assert claimed.agent_id is not None
            agent = update_returning(
                Agent,
                where={"id": claimed.agent_id, "status": Agent.Status.AVAILABLE, "simulated": call.simulated},
                values={"status": Agent.Status.BUSY, "status_changed_at": now, "updated_at": now},
            )
            if agent is None:
                raise AgentConflict(claimed.agent_id)
            call.status = Call.Status.ASSIGNED
            call.agent_id = agent.id
            call.assigned_at = now
            # Foreign keys are checked at COMMIT (Django makes them deferrable), so the assignment row
            # can go first and the call row last, with the latency measured just before it.
            call.assignment_time_ms = (time.perf_counter() - received_at) * 1000
            insert(
                Assignment(
                    call_id=call.id,
                    agent_id=claimed.agent_id,
                    strategy=strategy,
                    candidates=claimed.candidates,
                    latency_ms=call.assignment_time_ms,
                )
            )
            agent_type = config.agent_types_by_id.get(agent.agent_type_id)
            agent_status_changed(agent, agent_type_slug=agent_type.slug if agent_type else None)
        elif claimed.outcome == "QUEUED":
            call.status = Call.Status.QUEUED
            call.queued_at = now
        elif claimed.outcome == "SATURATED":
            call.status = Call.Status.SATURATED
            call.ended_at = now
            call.end_reason = "saturated"
        else:
            raise engine.EngineUnavailable(f"unexpected claim result {claimed.outcome}")
        call_event_record(call)
        insert(call)


def assignment_end(*, call_id: uuid.UUID | str, now: datetime.datetime) -> None:
    """The call's open assignment (if any) ends at ``now``: one statement, its SQL built once."""
    with connection.cursor() as cursor:
        cursor.execute(_ASSIGNMENT_END_SQL(), [now, call_id])


@functools.cache
def _ASSIGNMENT_END_SQL() -> str:
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(Assignment._meta.db_table)} SET {quote('ended_at')} = %s "
        f"WHERE {quote('call_id')} = %s AND {quote('ended_at')} IS NULL"
    )


def _undo(*, call: Call, claimed: engine.ClaimResult | None) -> None:
    if claimed is None or claimed.outcome not in ("ASSIGNED", "QUEUED"):
        return
    try:

        def run(cfg: RoutingConfig) -> bool:
            return engine.unclaim(
                schema_name=current_schema(),
                call_id=str(call.id),
                agent_id=claimed.agent_id,
                idle_since_ms=claimed.idle_since_ms,
                type_ids=cfg.type_ids,
                simulated=call.simulated,
            )

        engine_call(run)
        match_waiting_calls(simulated=call.simulated)
    except Exception:
        # Redis is unreachable: the sweep's drift check rebuilds the tenant once it is back.
        logger.exception("could not undo a claim in Redis; the sweep will repair it")


def record_queued_assignment(
    *, call_id: str, agent_id: str, candidates: int, started: float, strategy: str, simulated: bool
) -> bool:
    """Record that the engine handed waiting call ``call_id`` to ``agent_id`` (both of the pool
    ``simulated``). Runs inside the caller's transaction. False when the call is no longer waiting
    (cancelled, abandoned or never committed)."""
    now = clock.now()
    latency_ms = (time.perf_counter() - started) * 1000

    def update() -> Call | None:
        return update_returning(
            Call,
            where={"id": call_id, "status": Call.Status.QUEUED, "simulated": simulated},
            values={
                "status": Call.Status.ASSIGNED,
                "agent": agent_id,
                "assigned_at": now,
                "assignment_time_ms": latency_ms,
                "updated_at": now,
            },
        )

    call = update()
    if call is None:
        # Not visible as QUEUED: either it left the queue (cancelled, abandoned) or its creator has not
        # committed yet. The creator holds this lock until its transaction ends; then look again.
        advisory_lock_call(call_id)
        call = update()
    if call is None:
        return False
    # The agent must be free in Postgres too (every path that frees an agent writes AVAILABLE
    # first): Redis may have been rebuilt from a view where it still was.
    agent = update_returning(
        Agent,
        where={"id": agent_id, "status": Agent.Status.AVAILABLE, "simulated": simulated},
        values={"status": Agent.Status.BUSY, "status_changed_at": now, "wrap_up_ends_at": None, "updated_at": now},
    )
    if agent is None:
        raise AgentConflict(agent_id)
    insert(
        Assignment(call_id=call_id, agent_id=agent_id, strategy=strategy, candidates=candidates, latency_ms=latency_ms)
    )
    config = routing_config()
    call_type = config.call_types_by_id.get(call.call_type_id)
    agent_type = config.agent_types_by_id.get(agent.agent_type_id)
    with events_batch():
        planned = (call.planned_duration_seconds, call.expected_end_at)
        call_event_record(call, call_type_slug=call_type.slug if call_type else None)
        if (call.planned_duration_seconds, call.expected_end_at) != planned:
            # An in-transaction consumer of call.assigned planned the call (a simulated one).
            call.save(update_fields=["planned_duration_seconds", "expected_end_at"])
        agent_status_changed(agent, agent_type_slug=agent_type.slug if agent_type else None)
    return True


def match_waiting_calls(*, simulated: bool | None = None, limit: int = 1000) -> int:
    """Repair: pair idle agents with waiting calls of one pool (both when ``simulated`` is None)
    until one side is empty. Returns pairs recorded."""
    if simulated is None:
        return sum(match_waiting_calls(simulated=pool, limit=limit) for pool in POOLS)
    paired = 0
    for _ in range(limit):
        started = time.perf_counter()

        def run(cfg: RoutingConfig) -> engine.MatchResult | None:
            return engine.match(schema_name=current_schema(), type_ids=cfg.type_ids, simulated=simulated)

        # The match and its record in one transaction: a rebuild waits for both (see recovery).
        with transaction.atomic():
            matched = engine_call(run)
            if matched is None:
                return paired
            recorded = record_queued_assignment(
                call_id=matched.call_id,
                agent_id=matched.agent_id,
                candidates=matched.candidates,
                started=started,
                strategy=Strategy.LONGEST_IDLE,  # match.lua gives the head call the longest-idle agent
                simulated=simulated,
            )
            if not recorded:
                # The call is gone: give the agent back its place (its old idle clock) in the line.
                def undo(cfg: RoutingConfig, pair: engine.MatchResult = matched) -> bool:
                    return engine.unclaim(
                        schema_name=current_schema(),
                        call_id=pair.call_id,
                        agent_id=pair.agent_id,
                        idle_since_ms=pair.idle_since_ms,
                        type_ids=cfg.type_ids,
                        simulated=simulated,
                    )

                engine_call(undo, locked=True)
        if recorded:
            paired += 1
    return paired
