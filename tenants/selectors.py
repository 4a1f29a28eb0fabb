"""Reads of the public schema: API key and host resolution, cached briefly.

Two caches sit in front of the ``ApiKey`` table: the shared Redis cache and a copy in each process.
Revocation holds within ``LOCAL_KEY_SECONDS`` in every process because:

- the copy in a process expires ``LOCAL_KEY_SECONDS`` after it was read from the shared cache and is
  never extended by use (a key in constant use is re-read once a second);
- ``apikey_revoke`` overwrites the shared entry with the revoked row (``cache.set``), while readers
  that loaded the row from Postgres only ``cache.add`` it, so a reader that read the row just before
  the revocation cannot put the old, valid entry back over the revoked one.

Should Redis be unreachable when a key is revoked, the shared entry expires on its own after
``API_KEY_CACHE_SECONDS``; that is the bound then.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django_tenants.utils import schema_context

from tenants.models import ApiKey, Domain, Tenant

KEY_PREFIX = "cc_"


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key_id: int
    prefix: str
    scope: str
    tenant_id: int
    schema_name: str
    tenant_name: str
    tenant_slug: str

    def tenant(self) -> Tenant:
        """An unsaved-looking Tenant carrying what ``connection.set_tenant`` needs, without a query."""
        return Tenant(id=self.tenant_id, schema_name=self.schema_name, name=self.tenant_name, slug=self.tenant_slug)


def split_api_key(raw: str) -> tuple[str, str] | None:
    """``cc_<prefix>_<secret>`` -> (prefix, secret), or None when malformed."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    prefix, _, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not prefix or not secret or not prefix.isalnum():
        return None
    return prefix, secret


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _cache_key(prefix: str) -> str:
    return f"apikey:{prefix}"


# A one-second copy in the process saves a Redis round trip per request. Its expiry is absolute
# (set when it is read from the shared cache, never pushed forward by a hit), so every process
# re-reads a key it uses at least once a second and sees a revocation within LOCAL_KEY_SECONDS.
LOCAL_KEY_SECONDS = 1.0
_local_keys: dict[str, tuple[float, dict[str, Any]]] = {}


def _local_get(prefix: str) -> dict[str, Any] | None:
    found = _local_keys.get(prefix)
    if found is None or found[0] < time.monotonic():
        return None
    return found[1]


def _local_set(prefix: str, entry: dict[str, Any]) -> None:
    if len(_local_keys) > 10_000:
        _local_keys.clear()
    _local_keys[prefix] = (time.monotonic() + LOCAL_KEY_SECONDS, entry)


def _key_row(prefix: str) -> dict[str, Any]:
    row = (
        ApiKey.objects.filter(prefix=prefix)
        .values(
            "id",
            "secret_hash",
            "scope",
            "revoked_at",
            "tenant_id",
            "tenant__schema_name",
            "tenant__name",
            "tenant__slug",
        )
        .first()
    )
    return dict(row) if row else {"missing": True}


def apikey_cache_forget(*, prefix: str) -> None:
    """Replace the shared entry with the key's current row (revoked or deleted), unconditionally:
    a concurrent reader only ``add``s, so it cannot restore a stale valid entry afterwards."""
    _local_keys.pop(prefix, None)
    # The cache key is made in the public schema (tenant-aware make_key), whoever revokes.
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.set(_cache_key(prefix), _key_row(prefix), settings.API_KEY_CACHE_SECONDS)


def _domain_cache_key(hostname: str) -> str:
    return f"domain:{hostname}"


def domain_cache_forget(*, hostname: str) -> None:
    """Drop a cached host lookup (a domain was added or its tenant deleted)."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        cache.delete(_domain_cache_key(hostname))


def apikey_resolve(*, raw_key: str) -> ResolvedKey | None:
    """The active key matching ``raw_key``, or None. Must run with the public schema active."""
    parts = split_api_key(raw_key)
    if parts is None:
        return None
    prefix, secret = parts
    entry = _local_get(prefix)
    if entry is None:
        entry = cache.get(_cache_key(prefix))
        if entry is None:
            entry = _key_row(prefix)
            cache.add(_cache_key(prefix), entry, settings.API_KEY_CACHE_SECONDS)
        _local_set(prefix, entry)
    if entry.get("missing") or entry["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(entry["secret_hash"], hash_secret(secret)):
        return None
    return ResolvedKey(
        key_id=entry["id"],
        prefix=prefix,
        scope=entry["scope"],
        tenant_id=entry["tenant_id"],
        schema_name=entry["tenant__schema_name"],
        tenant_name=entry["tenant__name"],
        tenant_slug=entry["tenant__slug"],
    )


def tenant_for_hostname(*, hostname: str) -> Tenant | None:
    """The tenant whose domain is ``hostname`` (cached 30 s), or None. Public schema active."""
    key = _domain_cache_key(hostname)
    entry = cache.get(key)
    if entry is None:
        row = (
            Domain.objects.filter(domain=hostname)
            .values("tenant_id", "tenant__schema_name", "tenant__name", "tenant__slug")
            .first()
        )
        entry = row or {"missing": True}
        cache.set(key, entry, 30)
    if entry.get("missing"):
        return None
    return Tenant(
        id=entry["tenant_id"],
        schema_name=entry["tenant__schema_name"],
        name=entry["tenant__name"],
        slug=entry["tenant__slug"],
    )


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("slug")


def tenant_get(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def public_tenant() -> Tenant:
    return Tenant(schema_name=settings.PUBLIC_SCHEMA_NAME, name="public", slug="public")
