"""Who acts (an API key, a user, the system), for the audit log and the services that record it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rest_framework.request import Request


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (``key:<prefix>``), a user (``user:<name>``) or the system."""

    label: str

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what)

    @classmethod
    def api_key(cls, prefix: str) -> Actor:
        return cls(label=f"key:{prefix}")

    @classmethod
    def user(cls, username: str) -> Actor:
        return cls(label=f"user:{username}")


def actor_from_request(request: Request) -> Actor:
    from tenants.selectors import ResolvedKey

    if isinstance(request.auth, ResolvedKey):
        return Actor.api_key(request.auth.prefix)
    user = request.user
    return Actor.user(getattr(user, "username", "anonymous"))
