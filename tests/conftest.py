"""Test harness: real Postgres (a test database) and real Redis.

Two tenants, ``alpha`` and ``beta``, are created once per session (schema creation is slow). After
every test their data is truncated, their configuration re-seeded and their Redis keys deleted, so
each test starts from a freshly created tenant. Tests get database access without pytest-django's
per-test transaction, because the code under test commits, runs on_commit hooks and races threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from callcenter.tenancy import tenant_connection
from tests.helpers import ApiClient

BASE_DIR = Path(__file__).resolve().parents[1]

TENANT_TABLES = [
    "assignment_assignment",
    "calls_call",
    "agents_agent",
    "assignment_conversionrate",
    "calls_calltype",
    "agents_agenttype",
    "assignment_routingsettings",
    "audit_auditentry",
    "simulation_simulationrun",
    "events_outboxevent",
    "webhooks_webhookattempt",
    "webhooks_webhookmessage",
    "webhooks_webhookendpoint",
]


@dataclass
class TenantFixture:
    slug: str
    schema_name: str
    api_key: str
    admin_password: str
    tenant: object

    def client(self, *, key: str | None = None) -> ApiClient:
        return ApiClient(key=self.api_key if key is None else key)


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """Always create the test database (pytest-django only does so for tests marked django_db,
    and these tests use the database without that mark)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})  # type: ignore[arg-type]
    assert connection.settings_dict["NAME"].startswith("test_"), "refusing to run tests outside a test database"
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        connections.close_all()
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _static_files() -> None:
    """Collect static files as the Docker image and `make run` do: pages render ``{% static %}``
    through the manifest (tests run with DEBUG off). Skipped when nothing changed since the last
    collection, so a test run pays the few seconds only after an asset changed."""
    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders
    from django.core.management import call_command

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists():
        collected_at = manifest.stat().st_mtime
        newest = max(
            (storage.path(path) for finder in get_finders() for path, storage in finder.list([])),
            key=lambda name: Path(name).stat().st_mtime,
            default=None,
        )
        if newest is None or Path(newest).stat().st_mtime <= collected_at:
            return
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def _session_tenants(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[dict[str, TenantFixture]]:
    from assignment import engine
    from tenants.services import tenant_create

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        # This run's Redis database served an earlier run's (now dropped) test database.
        engine.instance_forget()
        created = {}
        for slug in ("alpha", "beta"):
            result = tenant_create(name=f"{slug.title()} Ltd", slug=slug, admin_password=f"{slug}-admin-pw")
            created[slug] = TenantFixture(
                slug=slug,
                schema_name=result.tenant.schema_name,
                api_key=result.issued_key.raw_key,
                admin_password=result.admin_password,
                tenant=result.tenant,
            )
        yield created


def _reset_tenant(schema_name: str) -> None:
    from assignment import engine
    from assignment.services.recovery import engine_rebuild
    from routing.services import config_seed_defaults, routing_config_forget

    assert connection.settings_dict["NAME"].startswith("test_")
    with schema_context(schema_name):
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(TENANT_TABLES)} RESTART IDENTITY CASCADE")
        routing_config_forget()
        config_seed_defaults()
        engine.forget_tenant(schema_name=schema_name)
        engine_rebuild()


@pytest.fixture(autouse=True)
def _database(django_db_blocker: pytest.FixtureRequest, _session_tenants: dict[str, TenantFixture]) -> Iterator[None]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        for tenant in _session_tenants.values():
            _reset_tenant(tenant.schema_name)
        tenant_connection().set_schema_to_public()
        yield
        tenant_connection().set_schema_to_public()
        for alias in connections:
            connections[alias].close_if_unusable_or_obsolete()


@pytest.fixture
def alpha(_session_tenants: dict[str, TenantFixture]) -> TenantFixture:
    return _session_tenants["alpha"]


@pytest.fixture
def beta(_session_tenants: dict[str, TenantFixture]) -> TenantFixture:
    return _session_tenants["beta"]


@pytest.fixture
def in_alpha(alpha: TenantFixture) -> Iterator[TenantFixture]:
    """Run the test body inside alpha's schema (for service-level tests)."""
    with schema_context(alpha.schema_name):
        yield alpha


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def kill(self) -> None:
        """As a crash would: no warm shutdown, tasks in hand are lost (they are acked late)."""
        self.process.kill()
        self.process.wait(timeout=10)


def service_env() -> dict[str, str]:
    """The environment for a process of the product started by a test: this run's test database
    and Redis database, without the variables that make settings claim a slot."""
    from django.conf import settings

    from tests.processes import database_url

    env = {name: value for name, value in os.environ.items() if name not in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="callcenter.settings",
        DATABASE_URL=database_url(),
        TEST_DATABASE_NAME=settings.DATABASES["default"]["NAME"],
        REDIS_URL=settings.REDIS_URL,
    )
    return env


@pytest.fixture
def celery_worker(alpha: TenantFixture, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real Celery worker process on this run's broker (its own Redis database) and test database."""
    from django.conf import settings

    env = service_env()
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    from callcenter.celery import app

    app.control.purge()  # tasks left by earlier tests must not delay this test's
    name = f"test-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "callcenter", "worker", "--pool=solo", "-n", f"{name}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = WorkerProcess(process=process, log_path=log_path)
    try:
        from callcenter.celery import app

        deadline = time.monotonic() + 30
        while not any(node.startswith(f"{name}@") for reply in app.control.ping(timeout=0.3) or [] for node in reply):
            assert process.poll() is None, worker.log()
            assert time.monotonic() < deadline, "the Celery worker did not answer within 30 s"
        yield worker
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture
def web_server(alpha: TenantFixture, tmp_path: Path) -> Iterator[object]:
    """gunicorn serving this run's test database as production does (DEBUG off, static files from
    the collected STATIC_ROOT through WhiteNoise), on a free loopback port."""
    from tests.processes import start_web

    server = start_web(tmp_path, workers=1)
    try:
        yield server
    finally:
        server.stop()
