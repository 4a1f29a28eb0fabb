from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from callcenter.tenancy import current_schema
from tenants.selectors import ResolvedKey


class HasTenantScope(BasePermission):
    """A tenant is selected, the caller is authenticated, and a ``read`` key only reads.

    Session users (tenant admins on the dashboard) are users of the tenant's own schema, so being
    logged in on a tenant host is enough.
    """

    message = "This API key may only read (scope 'read')."

    def has_permission(self, request: Request, view: Any) -> bool:
        if current_schema() == settings.PUBLIC_SCHEMA_NAME:
            return False
        user = request.user
        if user is None or not user.is_authenticated:
            from rest_framework.exceptions import NotAuthenticated

            raise NotAuthenticated()
        auth = request.auth
        if isinstance(auth, ResolvedKey) and request.method not in SAFE_METHODS:
            return auth.scope == "write"
        return True
