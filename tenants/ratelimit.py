"""The per-key rate limit (SPEC §5) and the key's "used this minute" mark, in one Redis round trip.

The only Redis commands outside the engine (``assignment.engine``): they work on the shared cache's
keys (``cache.make_key``), before any tenant is selected, so the tenant-schema engine is no place
for them (the public-schema ``tenants`` app imports no tenant-schema app).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import RedisError


def apikey_count_use(*, prefix: str) -> tuple[int | None, bool]:
    """Count one request of key ``prefix`` (fixed one-second windows). Returns (Retry-After seconds
    when over the limit, else None; whether this is the key's first use this minute)."""
    limit = settings.API_RATE_LIMIT_PER_SECOND
    window = int(time.time())
    counter = cache.make_key(f"ratelimit:{prefix}:{window}")
    used = cache.make_key(f"apikey-used:{prefix}")
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2)
        pipe.set(used, 1, nx=True, ex=60)
        count, _, first_use = pipe.execute()
    except RedisError:
        return None, False  # no shared counter without Redis: fail open (the engine answers 503 anyway)
    over = limit > 0 and int(count) > limit
    return (1 if over else None), bool(first_use)
