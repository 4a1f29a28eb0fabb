"""The database backend's savings are safe: the search path it does not resend is the one the
session has (never another tenant's), and the socket poll that replaced ``SELECT 1`` still finds a
connection the server hung up, before the request uses it."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection as default_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from agents.models import Agent
from tests.factories import make_agent

connection: Any = default_connection  # the project's backend (callcenter.db), with its extra attributes


def _backend_pid() -> int:
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def _names() -> list[str]:
    return sorted(Agent.objects.values_list("name", flat=True))


def test_the_search_path_is_sent_once_per_tenant_and_again_after_a_rollback(alpha, beta):
    with schema_context(alpha.schema_name):
        make_agent(name="alpha-agent")
    with schema_context(beta.schema_name):
        make_agent(name="beta-agent")

    with schema_context(alpha.schema_name):
        assert _names() == ["alpha-agent"]
        with CaptureQueriesContext(connection) as queries:
            assert _names() == ["alpha-agent"]
        assert not any("search_path" in q["sql"] for q in queries.captured_queries)  # already set

    # A SET inside a transaction that rolls back is undone by Postgres: it must be sent again.
    with schema_context(alpha.schema_name):
        try:
            with transaction.atomic():
                with schema_context(beta.schema_name):
                    assert _names() == ["beta-agent"]  # SET search_path to beta, inside the transaction
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        # Back in alpha: the session's path is alpha again (the SET was rolled back).
        assert _names() == ["alpha-agent"]
    with schema_context(beta.schema_name):
        with CaptureQueriesContext(connection) as queries:
            assert _names() == ["beta-agent"]
        assert any("search_path" in q["sql"] for q in queries.captured_queries)


def test_a_connection_the_server_closed_is_replaced_before_the_next_request_uses_it(alpha):
    """What Django runs when a request starts (``close_if_health_check_failed``; the test client
    skips it, so it is called here as a request's start would)."""
    client = alpha.client()
    assert client.get("/agents").status_code == 200
    connection.ensure_connection()
    assert connection.health_check_enabled
    # A live connection passes without a round trip.
    connection.health_check_done = False
    with CaptureQueriesContext(connection) as queries:
        connection.close_if_health_check_failed()
    assert connection.connection is not None and queries.captured_queries == []

    pid = connection.connection.info.backend_pid
    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"],
        dbname=database["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The backend exits on its own time: wait until its goodbye reached the socket (at most 10 s).
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(10_000), "the terminated backend never closed its socket"

    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None  # closed: the next query opens a new one
    assert client.get("/agents").status_code == 200
    assert _backend_pid() != pid


def test_prepared_statements_follow_the_tenant(alpha, beta):
    """Statements are prepared after their fifth use on a connection (server-side binding): Postgres
    re-plans one when the search path changes, so the same statement reads each tenant's own rows."""
    assert connection.settings_dict["OPTIONS"].get("server_side_binding") is True
    assert connection.settings_dict["OPTIONS"].get("prepare_threshold") == 5
    with schema_context(alpha.schema_name):
        make_agent(name="alpha-agent")
    with schema_context(beta.schema_name):
        make_agent(name="beta-agent")
    for _ in range(12):
        with schema_context(alpha.schema_name):
            assert _names() == ["alpha-agent"]
        with schema_context(beta.schema_name):
            assert _names() == ["beta-agent"]
    connection.ensure_connection()
    prepared = connection.connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    assert prepared > 0  # the statements above were prepared, and still answered per tenant


def test_statements_in_planned_each_time_are_never_prepared(in_alpha):
    from callcenter.db.planning import planned_each_time

    def prepared_agent_queries() -> int:
        return int(
            connection.connection.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%agents_agent%%status%%'"
            ).fetchone()[0]
        )

    connection.ensure_connection()
    connection.connection.execute("DEALLOCATE ALL")
    connection.connection._prepared.clear()
    with planned_each_time():
        for _ in range(8):
            list(Agent.objects.filter(status="BREAK"))
    assert prepared_agent_queries() == 0
    assert connection.connection.prepare_threshold == 5  # restored
    for _ in range(8):
        list(Agent.objects.filter(status="BREAK"))
    assert prepared_agent_queries() == 1  # the same query, outside the block: prepared after its fifth use


def test_the_calls_list_is_planned_for_its_filter_values(alpha):
    connection.ensure_connection()
    client = alpha.client()
    for _ in range(8):
        assert client.get("/calls?call_type=llamada_tipo_1").status_code == 200
    count = connection.connection.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM \"calls_call\"%ORDER BY%'"
    ).fetchone()[0]
    assert count == 0
