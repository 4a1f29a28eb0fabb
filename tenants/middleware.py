"""Tenant resolution (SPEC §5).

1. An API key (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``) selects its tenant, whatever
   the host. A malformed, unknown or revoked key is a 401 at once.
2. Without a key, the host name selects the tenant (``acme.localhost``).
3. Otherwise the public schema serves the request: the platform admin, health, metrics and docs;
   any tenant API path there answers 401 ``tenant_required`` (see ``callcenter.urls_public``).

The lookups are cached (see ``tenants.selectors``), so a request costs one Redis GET, no query.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from callcenter.errors import problem_response, unauthorized
from callcenter.logging import tenant_var
from callcenter.tenancy import tenant_connection
from tenants.ratelimit import apikey_count_use
from tenants.selectors import apikey_resolve, public_tenant, tenant_for_hostname
from tenants.services import apikey_touch

TENANTLESS_PATHS = frozenset({"/health", "/health/live", "/metrics"})


CONFLICTING_KEYS = "\x00conflicting"  # never a key: both headers were sent, with different keys


def raw_api_key(request: HttpRequest) -> str | None:
    """The key of ``Authorization: Bearer`` or ``X-API-Key``; ``CONFLICTING_KEYS`` when both are
    sent and differ (which one the client meant is unknown: neither is used)."""
    bearer = None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            bearer = value.strip()
    other = request.META.get("HTTP_X_API_KEY")
    other = other.strip() if other is not None else None
    if bearer is not None and other is not None and bearer != other:
        return CONFLICTING_KEYS
    return bearer if bearer is not None else other


class TenantResolutionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_connection().set_schema_to_public()
        request.api_key = None  # type: ignore[attr-defined]
        if request.path in TENANTLESS_PATHS:
            # Health checks and Prometheus scrapes name no tenant; /metrics has its own bearer token.
            request.tenant = public_tenant()  # type: ignore[attr-defined]
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
            return self.get_response(request)
        raw = raw_api_key(request)
        if raw == CONFLICTING_KEYS:
            return unauthorized(
                code="invalid_api_key",
                detail="Two different API keys were sent (Authorization and X-API-Key); send one.",
                request=request,
            )
        if raw is not None:
            resolved = apikey_resolve(raw_key=raw)
            if resolved is None:
                return unauthorized(
                    code="invalid_api_key", detail="The API key is malformed, unknown or revoked.", request=request
                )
            limited, first_use_this_minute = self._count_use(resolved.prefix)
            if limited is not None:
                return problem_response(
                    status=429,
                    code="rate_limited",
                    detail=f"Rate limit of {settings.API_RATE_LIMIT_PER_SECOND} requests per second exceeded.",
                    request=request,
                    headers={"Retry-After": str(limited)},
                )
            # last_used_at is written at most once a minute per key, not on every request.
            if first_use_this_minute:
                apikey_touch(key_id=resolved.key_id)
            request.api_key = resolved  # type: ignore[attr-defined]
            tenant = resolved.tenant()
        else:
            hostname = request.get_host().split(":")[0].lower()
            tenant = tenant_for_hostname(hostname=hostname) or public_tenant()

        request.tenant = tenant  # type: ignore[attr-defined]
        tenant_connection().set_tenant(tenant)
        tenant_var.set(tenant.schema_name)
        if tenant.schema_name == settings.PUBLIC_SCHEMA_NAME:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
        return self.get_response(request)

    @staticmethod
    def _count_use(prefix: str) -> tuple[int | None, bool]:
        return apikey_count_use(prefix=prefix)
