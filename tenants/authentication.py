from __future__ import annotations

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from tenants.selectors import ResolvedKey


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The ``request.user`` of a request authenticated by an API key."""

    key: ResolvedKey

    is_authenticated = True
    is_active = True
    is_staff = False

    @property
    def username(self) -> str:
        return f"key:{self.key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(BaseAuthentication):
    """The key was already checked by ``TenantResolutionMiddleware``; this only exposes it to DRF."""

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ResolvedKey] | None:
        resolved: ResolvedKey | None = getattr(request._request, "api_key", None)
        if resolved is None:
            return None
        return ApiKeyPrincipal(resolved), resolved

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="callcenter"'
