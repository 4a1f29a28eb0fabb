from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django_tenants.utils import schema_context

from dashboard.services import supervisor_create

SUPERVISOR_PASSWORD = "supervisor-pw-for-tests"


def forced_login(host: str, schema_name: str, username: str, **client_options) -> Client:
    """A logged-in browser without the password hash round; the session lives in ``schema_name``."""
    browser = Client(HTTP_HOST=host, **client_options)
    with schema_context(schema_name):
        browser.force_login(get_user_model().objects.get(username=username))
    return browser


@pytest.fixture
def users() -> Iterator[list[tuple[str, str]]]:
    """Users a test creates in a tenant schema, as (schema, username): removed afterwards (the
    per-test reset leaves the auth tables alone)."""
    created: list[tuple[str, str]] = []
    yield created
    for schema_name, username in created:
        with schema_context(schema_name):
            get_user_model().objects.filter(username=username).delete()


@pytest.fixture
def alpha_supervisor(alpha, users) -> str:
    with schema_context(alpha.schema_name):
        supervisor_create(username="sup", password=SUPERVISOR_PASSWORD)
    users.append((alpha.schema_name, "sup"))
    return "sup"


@pytest.fixture
def alpha_watcher(alpha, users) -> str:
    """A user who may watch the dashboard but not operate it."""
    with schema_context(alpha.schema_name):
        user = get_user_model().objects.create_user(username="watcher", password="watcher-pw")
        user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    users.append((alpha.schema_name, "watcher"))
    return "watcher"


@pytest.fixture
def alpha_stranger(alpha, users) -> str:
    """A user of alpha with no dashboard permission."""
    with schema_context(alpha.schema_name):
        get_user_model().objects.create_user(username="stranger", password="stranger-pw")
    users.append((alpha.schema_name, "stranger"))
    return "stranger"


@pytest.fixture
def supervisor_browser(alpha, alpha_supervisor) -> Client:
    return forced_login("alpha.localhost", alpha.schema_name, alpha_supervisor)
