"""The dashboard page and its login. The page is a shell: its script polls ``api/state``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from callcenter.tenancy import tenant_connection
from dashboard.apis import OPERATE_PERMISSION, VIEW_PERMISSION

POLL_INTERVAL_MS = 1000


def _tenant_name() -> str:
    return str(getattr(getattr(tenant_connection(), "tenant", None), "name", ""))


@require_GET
@login_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        return render(request, "dashboard/forbidden.html", {"tenant_name": _tenant_name()}, status=403)
    return render(
        request,
        "dashboard/index.html",
        {
            "tenant_name": _tenant_name(),
            "can_operate": request.user.has_perm(OPERATE_PERMISSION),
            "is_staff": request.user.is_staff,
            "poll_interval_ms": POLL_INTERVAL_MS,
        },
    )


class DashboardLoginView(LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {**super().get_context_data(**kwargs), "tenant_name": _tenant_name()}

    def get_default_redirect_url(self) -> str:
        return "/dashboard/"
