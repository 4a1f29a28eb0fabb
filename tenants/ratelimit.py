"""The per-key rate limit (SPEC §5) and the key's "used this minute" mark.

The only Redis commands outside the engine (``assignment.engine``): they work on the shared cache's
keys (``cache.make_key``), before any tenant is selected, so the tenant-schema engine is no place
for them (the public-schema ``tenants`` app imports no tenant-schema app).

**Leases.** The count is shared by every process (one Redis counter per key and one-second window),
but a process does not ask Redis for every request: it takes a lease of ``lease_size(limit)``
requests at once (``INCRBY``), spends it locally, and asks again when it is used up or the window
has changed. A lease is cut to what is left under the limit, so the limit is never exceeded; what
a lease costs is that requests leased by one process and not used in that second cannot be used by
another (at most ``lease_size - 1`` per process and window: 1 % of the limit, at most 20). A limit
under 100 per second leases one request at a time, which is the exact count. The "used this
minute" mark (for ``last_used_at``) is sent once a minute per process and key, with a lease when
there is one to take.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import RedisError

LEASE_FRACTION = 100  # a lease is 1/LEASE_FRACTION of the limit...
LEASE_MAX = 20  # ...and at most this many requests

# prefix -> (window, requests left in this process's lease for that window)
_leases: dict[str, tuple[int, int]] = {}
# prefix -> the minute this process last sent the key's "used" mark
_marked: dict[str, int] = {}


def lease_size(limit: int) -> int:
    return max(1, min(LEASE_MAX, limit // LEASE_FRACTION))


def apikey_count_use(*, prefix: str) -> tuple[int | None, bool]:
    """Count one request of key ``prefix`` (fixed one-second windows). Returns (Retry-After seconds
    when over the limit, else None; whether this is the key's first use this minute, across all
    processes)."""
    limit = settings.API_RATE_LIMIT_PER_SECOND
    now = time.time()
    window, minute = int(now), int(now // 60)
    lease = _leases.get(prefix)
    need_lease = limit > 0 and not (lease is not None and lease[0] == window and lease[1] > 0)
    need_mark = _marked.get(prefix) != minute
    if not need_lease:
        if limit > 0:
            assert lease is not None
            _leases[prefix] = (window, lease[1] - 1)
        if not need_mark:
            return None, False
    size = lease_size(limit)
    counter = cache.make_key(f"ratelimit:{prefix}:{window}")
    used = cache.make_key(f"apikey-used:{prefix}")
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        if need_lease:
            pipe.incrby(counter, size)
            pipe.expire(counter, 2)
        if need_mark:
            pipe.set(used, 1, nx=True, ex=60)
        answers = pipe.execute()
    except RedisError:
        return None, False  # no shared counter without Redis: fail open (the engine answers 503 anyway)
    first_use = bool(answers[-1]) if need_mark else False
    if need_mark:
        if len(_marked) > 10_000:
            _marked.clear()
        _marked[prefix] = minute
    if not need_lease:
        return None, first_use
    count = int(answers[0])
    granted = min(size, max(0, limit - (count - size)))
    if len(_leases) > 10_000:
        _leases.clear()
    _leases[prefix] = (window, max(0, granted - 1))
    return (None if granted else 1), first_use
