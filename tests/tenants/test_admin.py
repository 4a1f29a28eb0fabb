"""The two admin sites: each tenant's own (on its host) and the platform's (on the public host)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from calls.models import Call
from tests.factories import make_agent, make_call

PLATFORM_PASSWORD = "platform-admin-pw-for-tests"


def _login(host: str, username: str, password: str) -> tuple[Client, Any]:
    browser = Client(HTTP_HOST=host)
    response = browser.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})
    return browser, response


def _logged_in(host: str, username: str, password: str) -> Client:
    browser, response = _login(host, username, password)
    assert response.status_code == 302 and response["Location"] == "/admin/", response.content[:500]
    return browser


def _matrix(tenant) -> dict[str, dict[str, float]]:
    return tenant.client().get("/config/conversion-matrix").json()["matrix"]


def _grid_form(matrix: dict[str, dict[str, float]]) -> dict[str, str]:
    return {
        f"p__{agent_type}__{call_type}": str(p_ok)
        for agent_type, row in matrix.items()
        for call_type, p_ok in row.items()
    }


def _forced_login(host: str, schema_name: str, username: str) -> Client:
    """A logged-in browser without the password hash round (slow by design); the session is
    stored in ``schema_name``, where the middleware will look for it on ``host``."""
    browser = Client(HTTP_HOST=host)
    with schema_context(schema_name):
        browser.force_login(get_user_model().objects.get(username=username))
    return browser


@pytest.fixture
def alpha_admin(alpha) -> Client:
    return _forced_login("alpha.localhost", alpha.schema_name, "admin")


@pytest.fixture
def platform_admin(alpha) -> Iterator[Client]:
    """A superuser of the public schema (the platform admin), removed afterwards."""
    user_model = get_user_model()
    with schema_context("public"):
        user_model.objects.filter(username="platform").delete()
        user_model.objects.create_superuser(username="platform", email="", password=PLATFORM_PASSWORD)
    try:
        yield _forced_login("localhost", "public", "platform")
    finally:
        with schema_context("public"):
            user_model.objects.filter(username="platform").delete()


class TenantAdminTests:
    def test_it_logs_a_tenant_admin_in_on_the_tenant_s_host(self, alpha):
        browser = _logged_in("alpha.localhost", "admin", alpha.admin_password)

        response = browser.get("/admin/")

        assert response.status_code == 200
        assert "Alpha Ltd" in response.content.decode()

    def test_it_logs_the_platform_admin_in_on_the_public_host(self, platform_admin):
        browser = _logged_in("localhost", "platform", PLATFORM_PASSWORD)

        assert browser.get("/admin/tenants/tenant/").status_code == 200

    def test_it_shows_a_tenant_admin_its_own_agents_only(self, alpha, beta, alpha_admin):
        with schema_context(alpha.schema_name):
            make_agent(name="Alice of Alpha")
        with schema_context(beta.schema_name):
            make_agent(name="Bruno of Beta")

        response = alpha_admin.get("/admin/agents/agent/")

        assert response.status_code == 200
        html = response.content.decode()
        assert "Alice of Alpha" in html
        assert "Bruno of Beta" not in html
        assert "Alpha Ltd" in html  # the site header names the tenant

    def test_it_refuses_a_tenant_admin_s_credentials_on_another_tenant_s_host(self, alpha, beta):
        browser, response = _login("beta.localhost", "admin", alpha.admin_password)

        assert response.status_code == 200  # the login form again, with an error
        assert response.context["form"].errors
        assert browser.get("/admin/").status_code == 302
        assert _logged_in("beta.localhost", "admin", beta.admin_password).get("/admin/").status_code == 200

    def test_it_does_not_carry_a_session_from_one_tenant_host_to_another(self, alpha, beta, alpha_admin):
        assert alpha_admin.get("/admin/").status_code == 200

        for host in ("beta.localhost", "localhost"):
            response = alpha_admin.get("/admin/", HTTP_HOST=host)

            assert response.status_code == 302, host
            assert "/admin/login/" in response["Location"]

    def test_it_refuses_a_tenant_admin_on_the_platform_admin(self, alpha):
        browser, response = _login("localhost", "admin", alpha.admin_password)

        assert response.status_code == 200
        assert browser.get("/admin/tenants/tenant/").status_code == 302

    def test_it_lists_the_tenants_in_the_platform_admin(self, alpha, beta, platform_admin):
        response = platform_admin.get("/admin/tenants/tenant/")

        assert response.status_code == 200
        html = response.content.decode()
        assert "Alpha Ltd" in html and "Beta Ltd" in html
        assert platform_admin.get("/admin/tenants/apikey/").status_code == 200
        # Tenants are created by `manage.py tenant_create` (with their defaults), not by the admin form.
        assert platform_admin.get("/admin/tenants/tenant/add/").status_code == 403

    def test_it_does_not_open_a_tenant_s_admin_to_the_platform_admin(self, alpha, platform_admin):
        response = platform_admin.get("/admin/agents/agent/", HTTP_HOST="alpha.localhost")

        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


class ConversionMatrixAdminTests:
    def test_it_renders_the_matrix_as_a_grid(self, alpha, alpha_admin):
        response = alpha_admin.get("/admin/assignment/conversionrate/")

        assert response.status_code == 200
        html = response.content.decode()
        assert 'id="conversion-matrix"' in html
        for name in _grid_form(_matrix(alpha)):
            assert f'name="{name}"' in html
        assert html.count('type="number"') == 16
        assert 'value="0.3"' in html  # agente_tipo_1 x llamada_tipo_1 by default

    def test_it_saves_a_changed_cell(self, alpha, beta, alpha_admin):
        before = _matrix(alpha)
        form = _grid_form(before)
        form["p__agente_tipo_2__llamada_tipo_3"] = "0.42"

        response = alpha_admin.post("/admin/assignment/conversionrate/", form)

        assert response.status_code == 302, response.content[:500]
        after = _matrix(alpha)
        assert after["agente_tipo_2"]["llamada_tipo_3"] == pytest.approx(0.42)
        after["agente_tipo_2"]["llamada_tipo_3"] = before["agente_tipo_2"]["llamada_tipo_3"]
        assert after == before  # no other cell moved
        assert _matrix(beta)["agente_tipo_2"]["llamada_tipo_3"] == pytest.approx(0.07)
        assert 'value="0.42"' in alpha_admin.get("/admin/assignment/conversionrate/").content.decode()

    def test_it_refuses_a_value_outside_zero_to_one(self, alpha, alpha_admin, subtests):
        before = _matrix(alpha)

        for bad in ("1.5", "-0.1", "abc", "", "nan", "inf"):
            with subtests.test(value=bad):
                form = _grid_form(before)
                form["p__agente_tipo_1__llamada_tipo_1"] = bad

                response = alpha_admin.post("/admin/assignment/conversionrate/", form)

                assert response.status_code == 200
                assert response.context["errors"], response.content[:500]
                assert 'class="errorlist"' in response.content.decode()
                assert _matrix(alpha) == before

    def test_it_refuses_a_grid_with_a_missing_cell(self, alpha, alpha_admin):
        before = _matrix(alpha)
        form = _grid_form(before)
        del form["p__agente_tipo_4__llamada_tipo_4"]

        response = alpha_admin.post("/admin/assignment/conversionrate/", form)

        assert response.status_code == 200
        assert response.context["errors"]
        assert _matrix(alpha) == before


class CallAdminTests:
    def test_it_shows_calls_read_only(self, alpha, alpha_admin):
        with schema_context(alpha.schema_name):
            call = make_call(phone_number="+34600111222")

        listing = alpha_admin.get("/admin/calls/call/")
        change = alpha_admin.get(f"/admin/calls/call/{call.pk}/change/")

        assert listing.status_code == 200
        assert str(call.pk) in listing.content.decode()
        assert "+34600111222" not in listing.content.decode()  # the number is masked
        assert change.status_code == 200
        html = change.content.decode()
        assert 'name="_save"' not in html
        assert 'name="_continue"' not in html
        assert "+34600111222" not in html
        assert alpha_admin.get("/admin/calls/call/add/").status_code == 403
        assert alpha_admin.get(f"/admin/calls/call/{call.pk}/delete/").status_code == 403

    def test_it_ignores_a_posted_change_to_a_call(self, alpha, alpha_admin):
        with schema_context(alpha.schema_name):
            call = make_call()
            status_before = call.status

        response = alpha_admin.post(f"/admin/calls/call/{call.pk}/change/", {"priority": "9", "status": "COMPLETED"})

        assert response.status_code == 403
        with schema_context(alpha.schema_name):
            stored = Call.objects.get(pk=call.pk)
            assert (stored.status, stored.priority) == (status_before, 0)
