"""The only module that loads and calls the Lua scripts of ``assignment/lua/``.

Redis decides (who gets which call, atomically, per tenant); Postgres records and is the source of
truth. Each wrapper returns a small typed result; a missing epoch raises ``EngineStateLost`` so that
the caller rebuilds the tenant from Postgres (``assignment.services.recovery``) and tries again.

Invariant (kept by the scripts, see ``lua/_lib.lua``): an agent is handed at most one call, a call is
queued at most once, and a free agent never idles while a call waits.

Every operation names its pool (``simulated``): real and simulated traffic live in separate keys of
the same tenant (``assignment.keys``), so a call only ever meets an agent of its own pool.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.commands.core import Script

from assignment import keys
from assignment.keys import POOLS, TenantKeys
from callcenter.errors import EngineUnavailableError

_LUA_DIR = Path(__file__).resolve().parent / "lua"


class EngineStateLost(EngineUnavailableError):
    """Redis no longer holds this tenant's state (restart, flush): rebuild from Postgres."""


class EngineUnavailable(EngineUnavailableError):
    """Redis cannot be reached."""


class EngineStaleTypes(Exception):
    """The caller's list of agent types is older than Redis's: reload the configuration."""


_client_lock = threading.Lock()
_client: redis.Redis | None = None


def client() -> redis.Redis:
    """One connection pool per process (thread-safe), created on first use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                options: dict[str, Any] = {
                    "decode_responses": True,
                    "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
                    "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
                    "health_check_interval": 30,
                }
                url = settings.ENGINE_REDIS_URL
                if settings.ENGINE_REDIS_CLUSTER:
                    # Every key of a tenant carries its hash tag, so each script and each pipeline
                    # touches one slot: the cluster client routes it to the node that owns it.
                    _client = RedisCluster.from_url(url, **options)  # type: ignore[assignment]
                else:
                    _client = redis.Redis.from_url(url, **options)
    assert _client is not None
    return _client


# Scripts that do not work on a tenant's engine state, so run without the _lib.lua prelude.
_STANDALONE_SCRIPTS = frozenset({"release_lock"})


@cache
def _source(name: str) -> str:
    script = (_LUA_DIR / f"{name}.lua").read_text()
    if name in _STANDALONE_SCRIPTS:
        return script
    return (_LUA_DIR / "_lib.lua").read_text() + "\n" + script


_scripts: dict[str, Script] = {}


def _script(name: str) -> Script:
    script = _scripts.get(name)
    if script is None:
        # Script objects run EVALSHA and fall back to EVAL after a Redis restart (NOSCRIPT).
        script = client().register_script(_source(name))
        _scripts[name] = script
    return script


def _run(name: str, keys: TenantKeys, type_ids: Sequence[int], args: Sequence[Any]) -> list[str]:
    all_keys = keys.fixed() + [keys.idle_of_type(type_id) for type_id in type_ids]
    argv: list[Any] = [len(type_ids), *[str(t) for t in type_ids], *args]
    try:
        reply = _script(name)(keys=all_keys, args=argv)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise EngineUnavailable(str(exc)) from exc
    if reply and reply[0] == "NOEPOCH":
        raise EngineStateLost(keys.schema_name)
    if reply and reply[0] == "STALE_TYPES":
        raise EngineStaleTypes(keys.schema_name)
    return list(reply)


_QUEUE_SCORE_PRIORITY_STEP = 10**13  # ms: year 2286, so queued_at_ms never reaches the next priority


def queue_score(*, priority: int, queued_at_ms: int) -> int:
    """Higher priority first, then older first: exact in a double up to year 2255. The only place
    that encodes the score; ``queue_score_decode`` the only one that reads it back."""
    return (9 - priority) * _QUEUE_SCORE_PRIORITY_STEP + queued_at_ms


def queue_score_decode(score: float) -> tuple[int, int]:
    """(priority, queued_at_ms) of a queue score."""
    steps, queued_at_ms = divmod(int(score), _QUEUE_SCORE_PRIORITY_STEP)
    return 9 - steps, queued_at_ms


def to_ms(timestamp: float) -> int:
    return round(timestamp * 1000)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    outcome: str  # ASSIGNED, QUEUED, SATURATED, DUPLICATE
    agent_id: str | None = None
    candidates: int = 0
    idle_since_ms: int | None = None
    queue_position: int | None = None
    queue_length: int = 0
    redis_ms: float = 0.0


def claim(
    *,
    schema_name: str,
    call_id: str,
    strategy: str,
    priority: int,
    queued_at_ms: int,
    max_queue_length: int,
    type_ids: Sequence[int],
    p_ok_by_type: Mapping[int, float],
    rng: random.Random | None = None,
    simulated: bool = False,
) -> ClaimResult:
    fraction = (rng or random).random()
    started = time.perf_counter()
    reply = _run(
        "claim",
        TenantKeys(schema_name, simulated),
        type_ids,
        [
            call_id,
            strategy,
            queue_score(priority=priority, queued_at_ms=queued_at_ms),
            max_queue_length,
            repr(fraction),
            *[repr(float(p_ok_by_type.get(t, 0.0))) for t in type_ids],
        ],
    )
    redis_ms = (time.perf_counter() - started) * 1000
    kind = reply[0]
    if kind == "ASSIGNED":
        return ClaimResult(
            "ASSIGNED",
            agent_id=reply[1],
            candidates=int(reply[2]),
            idle_since_ms=int(float(reply[3])),
            redis_ms=redis_ms,
        )
    if kind == "QUEUED":
        return ClaimResult("QUEUED", queue_position=int(reply[1]), queue_length=int(reply[2]), redis_ms=redis_ms)
    if kind == "SATURATED":
        return ClaimResult("SATURATED", queue_length=int(reply[1]), redis_ms=redis_ms)
    return ClaimResult(kind, redis_ms=redis_ms)


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    outcome: str  # ASSIGNED, IDLE, ALREADY, MISMATCH
    call_id: str | None = None
    status: str | None = None
    idle_since_ms: int | None = None


def release(
    *,
    schema_name: str,
    agent_id: str,
    agent_type_id: int,
    idle_since_ms: int,
    expected_call_id: str | None,
    type_ids: Sequence[int],
    simulated: bool = False,
) -> ReleaseResult:
    reply = _run(
        "release",
        TenantKeys(schema_name, simulated),
        type_ids,
        [agent_id, str(agent_type_id), idle_since_ms, expected_call_id or ""],
    )
    kind = reply[0]
    if kind == "ASSIGNED":
        return ReleaseResult("ASSIGNED", call_id=reply[1])
    if kind == "ALREADY":
        return ReleaseResult("ALREADY", idle_since_ms=int(float(reply[1])) if reply[1] else None)
    if kind == "MISMATCH":
        return ReleaseResult("MISMATCH", status=reply[1] or None, call_id=reply[2] or None)
    return ReleaseResult(kind)


@dataclass(frozen=True, slots=True)
class SetStatusResult:
    outcome: str  # OK, BUSY
    previous_status: str | None = None
    call_id: str | None = None


def set_status(
    *,
    schema_name: str,
    agent_id: str,
    status: str,
    agent_type_id: int,
    expected_call_id: str | None,
    type_ids: Sequence[int],
    simulated: bool = False,
) -> SetStatusResult:
    reply = _run(
        "set_status",
        TenantKeys(schema_name, simulated),
        type_ids,
        [agent_id, status, str(agent_type_id), expected_call_id or ""],
    )
    if reply[0] == "BUSY":
        return SetStatusResult("BUSY", call_id=reply[1])
    return SetStatusResult("OK", previous_status=reply[1] or None)


def cancel(*, schema_name: str, call_id: str, type_ids: Sequence[int], simulated: bool = False) -> bool:
    """True when the call was waiting and has left the queue."""
    return _run("cancel", TenantKeys(schema_name, simulated), type_ids, [call_id])[0] == "REMOVED"


def unclaim(
    *,
    schema_name: str,
    call_id: str,
    agent_id: str | None,
    idle_since_ms: int | None,
    type_ids: Sequence[int],
    simulated: bool = False,
) -> bool:
    reply = _run(
        "unclaim",
        TenantKeys(schema_name, simulated),
        type_ids,
        [call_id, agent_id or "", "" if idle_since_ms is None else idle_since_ms],
    )
    return reply[0] == "UNDONE"


@dataclass(frozen=True, slots=True)
class MatchResult:
    call_id: str
    agent_id: str
    candidates: int
    idle_since_ms: int


def match(*, schema_name: str, type_ids: Sequence[int], simulated: bool = False) -> MatchResult | None:
    reply = _run("match", TenantKeys(schema_name, simulated), type_ids, [])
    if reply[0] != "ASSIGNED":
        return None
    return MatchResult(
        call_id=reply[1], agent_id=reply[2], candidates=int(reply[3]), idle_since_ms=int(float(reply[4]))
    )


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Redis's view of a tenant, for reconciliation checks and the status endpoints."""

    has_epoch: bool
    statuses: dict[str, str]
    calls: dict[str, str]
    types: dict[str, str]
    idle: list[tuple[str, int]]
    queue: list[str]


@dataclass(frozen=True, slots=True)
class RebuildInput:
    idle: Sequence[tuple[str, int, int]]  # agent_id, type_id, idle_since_ms
    busy: Sequence[tuple[str, int, str]]  # agent_id, type_id, call_id
    other: Sequence[tuple[str, int, str]]  # agent_id, type_id, status
    queue: Sequence[tuple[str, int]]  # call_id, queue_score


def rebuild(
    *, schema_name: str, state: RebuildInput, epoch: str, type_ids: Sequence[int], simulated: bool = False
) -> None:
    """Replace one pool's state with ``state`` (rebuild.lua)."""
    args: list[Any] = [epoch, len(state.idle)]
    for agent_id, type_id, score in state.idle:
        args += [agent_id, str(type_id), score]
    args.append(len(state.busy))
    for agent_id, type_id, call_id in state.busy:
        args += [agent_id, str(type_id), call_id]
    args.append(len(state.other))
    for agent_id, type_id, status in state.other:
        args += [agent_id, str(type_id), status]
    args.append(len(state.queue))
    for call_id, score in state.queue:
        args += [call_id, score]
    # rebuild.lua needs no epoch (it sets a new one) and answers REBUILT.
    _run("rebuild", TenantKeys(schema_name, simulated), type_ids, args)


def snapshot(*, schema_name: str, simulated: bool = False) -> EngineSnapshot:
    keys = TenantKeys(schema_name, simulated)
    try:
        pipe = client().pipeline(transaction=True)
        pipe.exists(keys.epoch)
        pipe.hgetall(keys.agent_status)
        pipe.hgetall(keys.agent_call)
        pipe.hgetall(keys.agent_type)
        pipe.zrange(keys.idle, 0, -1, withscores=True)
        pipe.zrange(keys.queue, 0, -1)
        has_epoch, statuses, calls, types, idle, queue = pipe.execute()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise EngineUnavailable(str(exc)) from exc
    return EngineSnapshot(
        has_epoch=bool(has_epoch),
        statuses=statuses,
        calls=calls,
        types=types,
        idle=[(member, int(score)) for member, score in idle],
        queue=list(queue),
    )


def snapshot_has_epoch(*, schema_name: str) -> bool:
    """True when Redis holds both pools of the tenant."""
    keys = [TenantKeys(schema_name, pool).epoch for pool in POOLS]
    return int(client().exists(*keys)) == len(keys)


def queue_depth(*, schema_name: str, pools: Sequence[bool] = POOLS) -> tuple[int, float | None]:
    """Waiting calls of the given pools (default: real and simulated) and the lowest queue score
    among their heads (None when empty)."""
    pipe = client().pipeline(transaction=False)
    for pool in pools:
        keys = TenantKeys(schema_name, pool)
        pipe.zcard(keys.queue)
        pipe.zrange(keys.queue, 0, 0, withscores=True)
    replies = pipe.execute()
    depth = sum(int(n) for n in replies[0::2])
    heads = [head[0][1] for head in replies[1::2] if head]
    return depth, (min(heads) if heads else None)


def acquire_rebuild_lock(*, schema_name: str, token: str, ttl_ms: int = 10_000) -> bool:
    return bool(client().set(TenantKeys(schema_name).rebuild_lock, token, nx=True, px=ttl_ms))


def rebuild_in_progress(*, schema_name: str) -> bool:
    return bool(client().exists(TenantKeys(schema_name).rebuild_lock))


def release_rebuild_lock(*, schema_name: str, token: str) -> bool:
    """Release the lock if ``token`` still holds it, atomically (release_lock.lua). False when it had
    expired and perhaps been taken by another rebuild, whose lock is then left alone."""
    try:
        return int(_script("release_lock")(keys=[TenantKeys(schema_name).rebuild_lock], args=[token])) == 1
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise EngineUnavailable(str(exc)) from exc


def forget_tenant(*, schema_name: str) -> int:
    """Delete every key of a tenant (tests, cleanup): found with SCAN on the tenant's hash tag, then
    deleted in one command, so that the state disappears at once as in a real flush (deleting key by
    key could leave a concurrent rebuild's fresh state half gone). The keys share a hash tag, so one
    command also works on a cluster."""
    pattern = TenantKeys(schema_name).epoch.rsplit(":", 1)[0] + ":*"
    found = list(dict.fromkeys(client().scan_iter(match=pattern, count=500)))
    return int(client().delete(*found)) if found else 0


def instance_claim(*, instance_id: str) -> str:
    """The deployment this Redis serves: ``instance_id`` if Redis had none (a new or emptied Redis),
    else the one already recorded, whoever it is."""
    try:
        client().set(keys.INSTANCE, instance_id, nx=True)
        return str(client().get(keys.INSTANCE) or "")
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise EngineUnavailable(str(exc)) from exc


def instance_forget() -> None:
    """Drop this Redis's deployment id (tests; an operator re-pointing Redis on purpose)."""
    client().delete(keys.INSTANCE)


def ping() -> float:
    started = time.perf_counter()
    client().ping()
    return (time.perf_counter() - started) * 1000


def heartbeat_write(*, process: str, now: float) -> None:
    """Record that ``process`` (``worker:<node>`` or ``beat:<host>``) is alive at ``now``."""
    client().hset(keys.HEARTBEATS, process, f"{now:.3f}")


def heartbeat_forget(*, process: str) -> None:
    """A process stopping cleanly says so (it is then not reported as missing)."""
    client().hdel(keys.HEARTBEATS, process)


def heartbeats_read(*, now: float, forget_after: float = 3600.0) -> dict[str, float]:
    """Every process's last heartbeat as its age in seconds; entries older than ``forget_after``
    (a process that died an hour ago) are removed."""
    raw = client().hgetall(keys.HEARTBEATS)
    ages = {str(process): now - float(at) for process, at in raw.items()}
    stale = [process for process, age in ages.items() if age > forget_after]
    if stale:
        client().hdel(keys.HEARTBEATS, *stale)
    return {process: age for process, age in ages.items() if age <= forget_after}
