from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from callcenter.logging import request_id_var, tenant_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (``X-Request-ID`` in, or a new one) for logs and the response.

    It also stamps ``request.received_at`` (monotonic), the start of ``assignment_time_ms``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        import time

        request.received_at = time.perf_counter()  # type: ignore[attr-defined]
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        tenant_token = tenant_var.set("-")
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            tenant_var.reset(tenant_token)
        response["X-Request-ID"] = request_id
        return response


# Everything the product serves comes from its own host: no script, style, font or frame elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The API reference pages (Swagger UI, ReDoc) are rendered by drf-spectacular with inline scripts.
_DOCS_PATHS = frozenset({"/docs", "/redoc"})
# Swagger UI and ReDoc (served by the project from drf-spectacular-sidecar) start from an inline
# script, and ReDoc renders in a blob: worker; still nothing from another host.
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


class SecurityHeadersMiddleware:
    """``Content-Security-Policy`` on every response, and ``Cache-Control: no-store`` on every API
    answer (they can carry a full phone number: a call's detail or creation), unless the view set
    its own caching."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path in _DOCS_PATHS
            response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY
        content_type = response.get("Content-Type", "")
        if "Cache-Control" not in response and ("json" in content_type or getattr(request, "api_key", None)):
            response["Cache-Control"] = "no-store"
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response
