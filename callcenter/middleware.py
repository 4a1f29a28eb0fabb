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
