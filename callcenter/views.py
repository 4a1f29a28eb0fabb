"""Project-level views: problem-details fallbacks and the health check."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt

from callcenter.errors import problem_response, unauthorized


def read_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A public JSON view that only reads: GET and HEAD; any other method is a 405 problem with
    ``Allow`` (not Django's HTML CSRF 403: the view takes no cookie and changes nothing)."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return problem_response(
                status=405,
                code="method_not_allowed",
                detail=f"{request.path} takes GET only.",
                request=request,
                headers={"Allow": "GET, HEAD"},
            )
        return view(request, *args, **kwargs)

    return wrapper


def tenant_required(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The public host serves no tenant data: without an API key or a tenant host, 401."""
    return unauthorized(
        code="tenant_required",
        detail="Send an API key (Authorization: Bearer <key> or X-API-Key) or use your tenant's host.",
        request=request,
    )


@read_only
def health(request: HttpRequest) -> HttpResponse:
    """Readiness, no auth: Postgres and Redis with timings (503 when either is down); workers and
    beat from their heartbeats (``degraded``, still 200, when they are missing)."""
    from callcenter.health import health_report

    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == "unavailable" else 200)


@read_only
def health_live(request: HttpRequest) -> HttpResponse:
    """Liveness, no auth: the process answers. Checks nothing else on purpose."""
    return JsonResponse({"status": "ok"})


def root(request: HttpRequest) -> HttpResponse:
    """``GET /``: what this service is and where its documentation lives. JSON for API clients
    (curl's ``*/*`` included); a page with the same links for a browser, which asks for HTML first."""
    from django.conf import settings
    from django.shortcuts import render

    from callcenter.tenancy import current_schema

    spectacular = settings.SPECTACULAR_SETTINGS
    links = {
        "docs": "/docs",
        "redoc": "/redoc",
        "schema": "/schema",
        "problems": "/problems",
        "health": "/health",
        "admin": "/admin/",
    }
    tenant_host = current_schema() != "public"
    if tenant_host:
        links["dashboard"] = "/dashboard/"
    response: HttpResponse
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
        response = render(
            request,
            "root.html",
            {
                "name": spectacular["TITLE"],
                "version": spectacular["VERSION"],
                "description": spectacular["DESCRIPTION"],
                "tenant_host": tenant_host,
            },
        )
    else:
        response = JsonResponse(
            {
                "name": spectacular["TITLE"],
                "version": spectacular["VERSION"],
                "description": spectacular["DESCRIPTION"],
                "links": links,
            }
        )
    response["Vary"] = "Accept"
    return response


def problems(request: HttpRequest) -> HttpResponse:
    """``GET /problems``: every problem ``code`` the API answers with, and what it means."""
    from django.shortcuts import render

    from callcenter.problems import PROBLEMS

    rows = [
        {"code": code, "status": status, "meaning": _code_spans(meaning)}
        for code, (status, meaning) in PROBLEMS.items()
    ]
    return render(request, "problems.html", {"problems": sorted(rows, key=lambda row: (row["status"], row["code"]))})


def _code_spans(text: str) -> SafeString:
    """Plain text with `code` spans (as written in ``callcenter.problems``) as HTML."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text)))  # escaped first


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``GET /favicon.ico`` on every host, no auth: the product's icon (browsers ask for it on every page)."""
    response = HttpResponseRedirect(static("dashboard/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response
