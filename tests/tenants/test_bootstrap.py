"""`manage.py bootstrap`: the first start of a deployment (docker compose runs it once)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from assignment import engine
from tenants.selectors import tenant_get
from tenants.services import tenant_delete
from tests.helpers import ApiClient


@pytest.fixture
def first_slug(alpha):
    def drop() -> None:
        tenant = tenant_get(slug="first")
        if tenant is not None:
            schema_name = tenant.schema_name
            tenant_delete(tenant=tenant)
            engine.forget_tenant(schema_name=schema_name)
        with schema_context("public"):
            get_user_model().objects.filter(username="operator").delete()

    drop()
    yield "first"
    drop()


def _bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


class BootstrapCommandTests:
    def test_it_creates_the_platform_admin_and_a_working_first_tenant_once(self, first_slug):
        args = ("--platform-username", "operator", "--platform-password", "op-pw-123456", "--tenant-slug", first_slug)

        output = _bootstrap(*args, "--public-url", "http://localhost:8080")
        again = _bootstrap(*args)

        with schema_context("public"):
            assert get_user_model().objects.get(username="operator").check_password("op-pw-123456")
        assert "http://localhost:8080/admin/" in output
        assert "http://first.localhost:8080/admin/" in output
        key = re.search(r"API key:\s+(cc_\S+)", output)
        assert key and ApiClient(key=key.group(1)).get("/agents").status_code == 200
        assert "exists already" in again and "cc_" not in again

    def test_it_refuses_to_run_without_a_platform_password(self, first_slug):
        with pytest.raises(CommandError, match="PLATFORM_ADMIN_PASSWORD"):
            _bootstrap("--platform-password", "", "--tenant-slug", first_slug)
        assert tenant_get(slug=first_slug) is None
