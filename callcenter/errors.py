"""One error type for services, and RFC 9457 problem details for every error the API returns.

Services raise ``ApplicationError(code=..., message=..., status=...)``. The DRF exception handler
turns it, DRF's own exceptions and Django's 404 into ``application/problem+json`` with a stable
``code``; Django-level 404/500 handlers do the same for paths outside DRF.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class EngineUnavailableError(Exception):
    """The assignment engine cannot serve (Redis unreachable, or its state lost and not rebuilt): the
    handler answers 503 ``engine_unavailable``. The engine's exceptions derive from it, so that this
    module (project wiring) imports no app."""


class ApplicationError(Exception):
    """A domain error with a stable machine-readable ``code`` and the HTTP status it maps to."""

    def __init__(
        self,
        *,
        code: str,
        message: str,
        status: int = 400,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.errors = errors or []
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_body(
    *, status: int, code: str, detail: str, instance: str = "", errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    from callcenter.logging import request_id_var
    from callcenter.problems import problem_type

    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id != "-":
        body["request_id"] = request_id  # the X-Request-ID header, for a support ticket or the logs
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    request: HttpRequest | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """A plain Django problem response, for middleware and Django-level handlers."""
    body = problem_body(
        status=status, code=code, detail=detail, instance=request.path if request else "", errors=errors
    )
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def unauthorized(*, code: str, detail: str, request: HttpRequest, realm: str = "callcenter") -> JsonResponse:
    """A 401 problem with the bearer challenge (outside DRF: middleware and plain views)."""
    return problem_response(
        status=401, code=code, detail=detail, request=request, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'}
    )


def flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dict as a flat list of ``{field, message, code}``."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""
            field = f"{prefix}.{name}" if prefix and name else (name or prefix)
            out.extend(flatten_validation_errors(value, field))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                out.extend(flatten_validation_errors(item, f"{prefix}[{index}]" if prefix else str(index)))
            else:
                out.extend(flatten_validation_errors(item, prefix))
    else:
        code = getattr(detail, "code", "invalid") or "invalid"
        out.append({"field": prefix or "non_field_errors", "message": str(detail), "code": str(code)})
    return out


_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_json",
    drf.AuthenticationFailed: "invalid_credentials",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


# How long a client should wait before retrying after the database failed (the connection is
# replaced on the next request; most outages we survive are restarts and failovers).
DATABASE_RETRY_AFTER_SECONDS = 2


def is_database_outage(exc: BaseException | None) -> bool:
    """Postgres unreachable, restarting, too slow (statement/lock timeout) or the connection broke."""
    return isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError)


def database_unavailable_body(instance: str) -> dict[str, Any]:
    return problem_body(
        status=503,
        code="database_unavailable",
        detail="The database is unreachable or too slow; the request may not have been applied. Retry shortly.",
        instance=instance,
    )


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    instance = request.path if request is not None else ""
    headers: dict[str, str] = {}
    errors: list[dict[str, str]] | None = None

    if isinstance(exc, ApplicationError):
        status, code, detail, errors = exc.status, exc.code, exc.message, exc.errors or None
        headers.update(exc.headers)
        body = problem_body(status=status, code=code, detail=detail, instance=instance, errors=errors)
        body.update(exc.extra)
        return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)

    if isinstance(exc, EngineUnavailableError):
        logger.error("assignment engine unavailable: %s", exc)
        body = problem_body(
            status=503,
            code="engine_unavailable",
            detail="The assignment engine (Redis) is unreachable; nothing was changed. Retry shortly.",
            instance=instance,
        )
        return Response(body, status=503, headers={"Retry-After": "1"}, content_type=PROBLEM_CONTENT_TYPE)

    if is_database_outage(exc):
        logger.error("database unavailable: %s", exc)
        return Response(
            database_unavailable_body(instance),
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            content_type=PROBLEM_CONTENT_TYPE,
        )

    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        body = problem_body(
            status=413, code="payload_too_large", detail="The request body is too large.", instance=instance
        )
        return Response(body, status=413, content_type=PROBLEM_CONTENT_TYPE)

    if not isinstance(exc, drf.APIException):
        return None

    if isinstance(exc, drf.ValidationError):
        status, code = 400, "validation_error"
        errors = flatten_validation_errors(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5])
        detail = f"Invalid input. {detail}" if detail else "Invalid input."
    else:
        status = exc.status_code
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else "Error."
        if isinstance(exc, drf.ParseError):
            detail = f"The request body is not valid JSON: {exc.detail}"
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    for name in ("WWW-Authenticate", "Retry-After"):
        value = getattr(exc, "headers", {}).get(name) if hasattr(exc, "headers") else None
        if value:
            headers[name] = value
    body = problem_body(status=status, code=code, detail=detail, instance=instance, errors=errors)
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(status=404, code="not_found", detail="No such resource.", request=request)


def handler500(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception, so it is still current here: a database
    # outage met outside a DRF view (key lookup, admin, health) is a 503 too, never a 500.
    if is_database_outage(sys.exc_info()[1]):
        response = JsonResponse(database_unavailable_body(request.path), status=503, content_type=PROBLEM_CONTENT_TYPE)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    return problem_response(status=500, code="internal_error", detail="An unexpected error occurred.", request=request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return problem_response(
            status=413, code="payload_too_large", detail="The request body is too large.", request=request
        )
    return problem_response(status=400, code="bad_request", detail="Bad request.", request=request)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(status=403, code="permission_denied", detail="Forbidden.", request=request)
