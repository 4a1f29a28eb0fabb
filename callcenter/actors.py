from rest_framework.request import Request

from audit.services import Actor
from tenants.selectors import ResolvedKey


def actor_from_request(request: Request) -> Actor:
    if isinstance(request.auth, ResolvedKey):
        return Actor.api_key(request.auth.prefix)
    user = request.user
    return Actor.user(getattr(user, "username", "anonymous"))
