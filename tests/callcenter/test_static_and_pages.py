"""Everything a person opens in a browser is served by the product itself: static files through
WhiteNoise, Swagger UI and ReDoc from drf-spectacular-sidecar, nothing from another host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from tests.callcenter.pages import is_local, parameterless_paths, walk_html
from tests.factories import make_agent, make_call


def _logged_in(host: str, schema_name: str, username: str) -> Client:
    browser = Client(HTTP_HOST=host)
    with schema_context(schema_name):
        browser.force_login(get_user_model().objects.get(username=username))
    return browser


@pytest.fixture
def platform_user() -> Iterator[str]:
    user_model = get_user_model()
    with schema_context("public"):
        user_model.objects.filter(username="walker").delete()
        user_model.objects.create_superuser(username="walker", email="", password="walker-pw-for-tests")
    try:
        yield "walker"
    finally:
        with schema_context("public"):
            user_model.objects.filter(username="walker").delete()


def _assert_served_locally(result, *, expected: set[str]) -> None:
    assert expected <= set(result.pages), sorted(result.pages)
    assert not result.external, result.external
    assert not result.broken_assets, result.broken_assets
    assert result.assets, "the pages referenced no static file at all"
    errors = {page: status for page, status in result.pages.items() if status >= 500}
    assert not errors, errors


class ExternalUrlTests:
    def test_it_recognises_what_is_on_this_machine(self):
        assert is_local("/static/admin/css/base.css")
        assert is_local("http://alpha.localhost:8000/admin/")
        assert is_local("data:image/png;base64,AAAA")
        assert not is_local("https://cdn.jsdelivr.net/npm/swagger-ui-dist@latest/swagger-ui.css")
        assert not is_local("//fonts.googleapis.com/css2?family=Roboto")

    def test_it_finds_every_page_of_the_url_conf_that_takes_no_argument(self):
        paths = parameterless_paths("callcenter.urls")

        assert {"/docs", "/redoc", "/admin/", "/admin/login/"} <= set(paths)
        assert not any("<" in path for path in paths)


class PagesTests:
    def test_it_serves_every_tenant_page_from_this_host_alone(self, alpha):
        with schema_context(alpha.schema_name):
            make_agent(name="Ana")
            make_call()
        browser = _logged_in("alpha.localhost", alpha.schema_name, "admin")

        result = walk_html(browser, host="alpha.localhost", seeds=parameterless_paths("callcenter.urls"))

        _assert_served_locally(result, expected={"/admin/", "/docs", "/redoc", "/admin/agents/agent/"})
        assert any(page.startswith("/admin/agents/agent/") and page.endswith("/change/") for page in result.pages)

    def test_it_serves_every_platform_page_from_this_host_alone(self, alpha, platform_user):
        browser = _logged_in("localhost", "public", platform_user)

        result = walk_html(browser, host="localhost", seeds=parameterless_paths("callcenter.urls_public"))

        _assert_served_locally(result, expected={"/admin/", "/docs", "/redoc", "/admin/tenants/tenant/"})

    def test_it_serves_the_login_page_and_docs_to_a_visitor_from_this_host_alone(self, alpha):
        result = walk_html(Client(), host="localhost", seeds=["/admin/login/", "/docs", "/redoc"])

        _assert_served_locally(result, expected={"/admin/login/", "/docs", "/redoc"})


class StaticFilesTests:
    def test_it_serves_hashed_static_files_cached_for_a_year(self, alpha):
        page = Client().get("/admin/login/", HTTP_HOST="localhost").content.decode()
        css = next(part for part in page.split('"') if part.startswith("/static/admin/css/base.") and ".css" in part)

        response = Client().get(css, HTTP_HOST="localhost", HTTP_ACCEPT_ENCODING="gzip")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/css")
        assert "immutable" in response["Cache-Control"]
        assert response.get("Content-Encoding") == "gzip"

    def test_it_serves_static_files_without_a_tenant_or_a_key(self):
        response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", HTTP_HOST="nowhere")

        assert response.status_code == 200

    def test_every_host_serves_the_favicon_without_a_key(self, alpha):
        for host in ("localhost", "alpha.localhost"):
            response = Client().get("/favicon.ico", HTTP_HOST=host)
            assert response.status_code == 302, (host, response.status_code)

            icon = Client().get(response["Location"], HTTP_HOST=host)

            assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml"), host
