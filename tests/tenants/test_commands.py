"""The management commands that create tenants and issue or revoke API keys."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import AgentType
from assignment import engine
from assignment.models import ConversionRate, RoutingSettings
from calls.models import CallType
from tenants.models import ApiKey, Domain, Tenant
from tenants.selectors import tenant_get
from tenants.services import tenant_delete
from tests.helpers import ApiClient, assert_problem

KEY = re.compile(r"\bcc_[0-9a-f]+_[A-Za-z0-9_-]+")


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _drop(slug: str) -> None:
    tenant = tenant_get(slug=slug)
    if tenant is not None:
        schema_name = tenant.schema_name
        tenant_delete(tenant=tenant)
        engine.forget_tenant(schema_name=schema_name)


@pytest.fixture
def gamma_slug(alpha):
    """The slug of a tenant the test creates; it is dropped afterwards, whatever happened."""
    _drop("gamma")
    yield "gamma"
    _drop("gamma")


class TenantCreateCommandTests:
    def test_it_creates_a_working_tenant_with_its_defaults(self, gamma_slug, alpha):
        output = _run("tenant_create", "--name", "Gamma Ltd", "--slug", gamma_slug)

        tenant = Tenant.objects.get(slug=gamma_slug)
        assert tenant.name == "Gamma Ltd"
        assert Domain.objects.filter(tenant=tenant, domain="gamma.localhost", is_primary=True).exists()
        key = KEY.search(output)
        assert key, output
        login = re.search(r"Login:\s+(\S+) / (\S+)", output)
        assert login, output
        assert login.group(1) == "admin"

        # The printed key works against the API, for this tenant only.
        client = ApiClient(key=key.group(0))
        created = client.post("/agents", {"name": "Gina", "agent_type": "agente_tipo_2"})
        assert created.status_code == 201, created.content[:300]
        assert [a["name"] for a in client.get("/agents").json()["results"]] == ["Gina"]
        assert alpha.client().get("/agents").json()["results"] == []

        # The printed admin login opens the tenant's admin on its host.
        browser = Client(HTTP_HOST="gamma.localhost")
        response = browser.post("/admin/login/", {"username": "admin", "password": login.group(2), "next": "/admin/"})
        assert response.status_code == 302 and response["Location"] == "/admin/", response.content[:300]
        assert browser.get("/admin/").status_code == 200

        with schema_context(tenant.schema_name):
            assert CallType.objects.count() == 4
            assert AgentType.objects.count() == 4
            assert ConversionRate.objects.count() == 16
            assert RoutingSettings.objects.count() == 1
        assert ApiKey.objects.filter(tenant=tenant, scope="write", revoked_at__isnull=True).count() == 1

    def test_it_serves_a_tenant_s_host_from_creation_until_deletion(self, gamma_slug):
        # Host lookups are cached; creating and deleting the tenant must not wait for them to expire.
        by_host = ApiClient(key=None, host="gamma.localhost")
        assert_problem(by_host.get("/agents"), 401, "tenant_required")  # no such host yet: the public site

        output = _run("tenant_create", "--name", "Gamma Ltd", "--slug", gamma_slug)
        key = KEY.search(output).group(0)
        assert ApiClient(key=key).get("/agents").status_code == 200
        assert_problem(by_host.get("/agents"), 401, "not_authenticated")  # the tenant's host, not logged in

        tenant_delete(tenant=Tenant.objects.get(slug=gamma_slug))

        assert_problem(ApiClient(key=key).get("/agents"), 401, "invalid_api_key")
        assert_problem(by_host.get("/agents"), 401, "tenant_required")
        assert not Domain.objects.filter(domain="gamma.localhost").exists()

    def test_it_refuses_a_duplicate_slug(self, alpha):
        tenants_before = Tenant.objects.count()

        with pytest.raises(CommandError, match="already exists"):
            _run("tenant_create", "--name", "Another Alpha", "--slug", "alpha")

        assert Tenant.objects.count() == tenants_before
        assert Tenant.objects.get(slug="alpha").name == "Alpha Ltd"

    def test_it_refuses_an_invalid_slug(self, alpha, subtests):
        tenants_before = Tenant.objects.count()

        for slug in ("Bad Slug", "9lives", "x", "public", "pg_gamma", "gam-ma", "", "a" * 42):
            with subtests.test(slug=slug), pytest.raises(CommandError, match="slug"):
                _run("tenant_create", "--name", "Whatever", "--slug", slug)

        assert Tenant.objects.count() == tenants_before

    def test_it_requires_a_name_and_a_slug(self, alpha):
        with pytest.raises(CommandError):
            _run("tenant_create", "--slug", "delta")

        assert tenant_get(slug="delta") is None


class ApiKeyCreateCommandTests:
    def test_it_prints_a_working_read_key(self, alpha):
        output = _run("apikey_create", "--tenant", "alpha", "--scope", "read", "--name", "reporting")

        raw = output.strip()
        assert KEY.fullmatch(raw), output
        client = ApiClient(key=raw)
        assert client.get("/agents").status_code == 200
        assert_problem(client.post("/agents", {"name": "x", "agent_type": "agente_tipo_1"}), 403, "permission_denied")
        stored = ApiKey.objects.get(prefix=raw.split("_")[1])
        assert (stored.tenant_id, stored.scope, stored.name) == (alpha.tenant.id, "read", "reporting")

    def test_it_prints_a_write_key_by_default(self, alpha):
        raw = _run("apikey_create", "--tenant", "alpha").strip()

        response = ApiClient(key=raw).post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"})

        assert response.status_code == 201, response.content[:300]

    def test_it_revokes_a_key_by_its_prefix(self, alpha):
        raw = _run("apikey_create", "--tenant", "alpha", "--scope", "read").strip()
        prefix = raw.split("_")[1]
        assert ApiClient(key=raw).get("/agents").status_code == 200

        output = _run("apikey_create", "--tenant", "alpha", "--revoke", prefix)

        assert prefix in output
        assert_problem(ApiClient(key=raw).get("/agents"), 401, "invalid_api_key")
        assert ApiKey.objects.get(prefix=prefix).revoked_at is not None
        assert alpha.client().get("/agents").status_code == 200  # other keys are untouched

    def test_it_will_not_revoke_another_tenant_s_key(self, alpha, beta):
        beta_prefix = beta.api_key.split("_")[1]

        with pytest.raises(CommandError, match="No key"):
            _run("apikey_create", "--tenant", "alpha", "--revoke", beta_prefix)

        assert beta.client().get("/agents").status_code == 200

    def test_it_refuses_an_unknown_tenant(self, alpha):
        keys_before = ApiKey.objects.count()

        with pytest.raises(CommandError, match="No tenant"):
            _run("apikey_create", "--tenant", "nosuchtenant")

        assert ApiKey.objects.count() == keys_before

    def test_it_refuses_an_unknown_scope(self, alpha):
        with pytest.raises(CommandError):
            _run("apikey_create", "--tenant", "alpha", "--scope", "admin")


class PrintedAddressTests:
    """Every address a command prints uses one port: --port, else $WEB_PORT / $PORT, else `make run`'s."""

    def test_tenant_create_prints_the_port_asked_for_and_keeps_the_migrations_quiet(
        self, gamma_slug, capfd: pytest.CaptureFixture[str]
    ):
        output = _run("tenant_create", "--name", "Gamma", "--slug", gamma_slug, "--port", "8123")

        assert "http://gamma.localhost:8123/admin/" in output
        # The schema's migrations print nothing that would bury the password and key shown once.
        assert "Applying" not in capfd.readouterr().out

    def test_the_environment_s_port_is_used_without_port(self, gamma_slug, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.delenv("WEB_PORT", raising=False)
        monkeypatch.setenv("PORT", "8300")
        _run("tenant_create", "--name", "Gamma", "--slug", gamma_slug)

        output = _run("supervisor_create", "--tenant", gamma_slug, "--username", "sue")

        assert "http://gamma.localhost:8300/dashboard/" in output and "<port>" not in output
