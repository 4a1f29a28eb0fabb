"""Postgres is the source of truth: Redis losing its data (restart, flush) mid-traffic loses no
call and doubles no agent; a failed Postgres write undoes the claim; reconcile rebuilds."""

from __future__ import annotations

import threading
import time
from io import StringIO
from typing import Any
from unittest import mock

import pytest
import redis
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment import engine
from assignment.keys import TenantKeys
from assignment.services.recovery import engine_drift
from assignment.services.sweep import sweep_tenant
from calls.models import Call
from tests.assignment.test_concurrency import check_invariants
from tests.factories import make_agent, make_call
from tests.helpers import ApiClient


class RedisLossTests:
    def test_it_rebuilds_when_the_epoch_is_gone_and_keeps_every_call(self, alpha) -> None:
        client = alpha.client()
        for n in range(3):
            client.post("/agents", {"name": f"a{n}", "agent_type": "agente_tipo_1", "status": "AVAILABLE"})
        first = [
            client.post("/calls", {"phone_number": f"+3462000000{n}", "call_type": "llamada_tipo_1"}).json()
            for n in range(5)
        ]
        assert [c["status"] for c in first] == ["ASSIGNED"] * 3 + ["QUEUED"] * 2
        engine.forget_tenant(schema_name=alpha.schema_name)  # as after a Redis restart
        # The next call triggers the rebuild: it must queue behind the two waiting calls.
        third = client.post("/calls", {"phone_number": "+34620000009", "call_type": "llamada_tipo_1"})
        assert third.status_code == 202
        with schema_context(alpha.schema_name):
            snap = engine.snapshot(schema_name=alpha.schema_name)
            assert snap.queue == [first[3]["id"], first[4]["id"], third.json()["id"]]
            assert sorted(snap.calls.values()) == sorted(c["id"] for c in first[:3])
        # Completing a call after the loss hands its agent the oldest waiting call.
        done = client.post(f"/calls/{first[0]['id']}/complete", {"outcome": "OK"})
        assert done.status_code == 200
        assert client.get(f"/calls/{first[3]['id']}").json()["agent_id"] == first[0]["agent_id"]
        check_invariants(alpha.schema_name)

    def test_a_flush_in_the_middle_of_concurrent_traffic_loses_nothing(self, alpha) -> None:
        client = alpha.client()
        for n in range(5):
            client.post("/agents", {"name": f"f{n}", "agent_type": "agente_tipo_2", "status": "AVAILABLE"})
        errors: list[str] = []
        created: list[str] = []
        stop = threading.Event()

        def traffic(seed: int) -> None:
            api = ApiClient(key=alpha.api_key)
            try:
                n = 0
                while not stop.is_set() and n < 60:
                    response = api.post(
                        "/calls", {"phone_number": f"+346300{seed}{n:04d}", "call_type": "llamada_tipo_2"}
                    )
                    if response.status_code not in (201, 202):
                        errors.append(f"{response.status_code} {response.content[:200]!r}")
                    else:
                        created.append(response.json()["id"])
                    assigned = api.get("/calls?status=ASSIGNED&page_size=5").json()["results"]
                    if assigned:
                        done = api.post(f"/calls/{assigned[0]['id']}/complete", {"outcome": "KO"})
                        if done.status_code != 200:
                            errors.append(f"complete {done.status_code} {done.content[:200]!r}")
                    n += 1
            except Exception as exc:  # collected and asserted on below
                errors.append(repr(exc))
            finally:
                connection.close()

        threads = [threading.Thread(target=traffic, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        # The flushes follow the traffic's progress, not the wall clock: on a loaded machine the
        # threads may manage few requests per second, and each flush must still land mid-traffic.
        for threshold in (8, 24, 40):
            deadline = time.monotonic() + 120
            while len(created) < threshold and not errors and time.monotonic() < deadline:
                threading.Event().wait(0.02)
            engine.forget_tenant(schema_name=alpha.schema_name)  # Redis loses everything, again
        while len(created) < 56 and not errors and any(t.is_alive() for t in threads):
            threading.Event().wait(0.02)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        with schema_context(alpha.schema_name):
            # The traffic may stop right after the last flush: the next sweep (beat, every second)
            # notices the missing epoch and rebuilds, as it would in production. A claim caught in
            # flight by a rebuild can leave drift, which the following sweep repairs (two sightings).
            sweep_tenant()
            sweep_tenant()
            statuses = dict(Call.objects.filter(id__in=created).values_list("id", "status"))
        assert len(statuses) == len(created) and len(created) > 20
        # Every call the API accepted still exists in exactly one state; Redis agrees with Postgres.
        check_invariants(alpha.schema_name)


def _failing_insert_of(model: type, message: str) -> Any:
    """A stand-in for the hot path's ``insert`` whose write of a ``model`` row fails."""
    from callcenter.db.writes import insert

    def fake(instance: Any) -> None:
        if isinstance(instance, model):
            raise DatabaseError(message)
        insert(instance)

    return fake


class FailedWriteTests:
    def test_a_failed_postgres_write_undoes_the_claim(self, in_alpha) -> None:
        agent = make_agent(name="kept")
        from assignment.models import Assignment

        with (
            mock.patch("assignment.services.assign.insert", side_effect=_failing_insert_of(Assignment, "disk full")),
            pytest.raises(DatabaseError),
        ):
            make_call()
        # Nothing half-assigned: no call row, the agent is free in both stores with its old clock.
        assert Call.objects.count() == 0
        agent_row = Agent.objects.get(id=agent.id)
        assert agent_row.status == Agent.Status.AVAILABLE
        snap = engine.snapshot(schema_name=in_alpha.schema_name)
        assert snap.idle == [(str(agent.id), engine.to_ms(agent_row.idle_since.timestamp()))]
        assert not engine_drift()
        assert make_call().agent_id == agent.id

    def test_a_failed_write_of_a_queued_call_leaves_nothing_in_the_queue(self, in_alpha) -> None:
        with (
            mock.patch("assignment.services.assign.insert", side_effect=_failing_insert_of(Call, "boom")),
            pytest.raises(DatabaseError),
        ):
            make_call()
        assert engine.snapshot(schema_name=in_alpha.schema_name).queue == []

    def test_redis_down_gives_a_503_and_changes_nothing(self, alpha) -> None:
        client = alpha.client()
        dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
        with mock.patch.object(engine, "_client", dead), mock.patch.object(engine, "_scripts", {}):
            response = client.post("/calls", {"phone_number": "+34600111222", "call_type": "llamada_tipo_1"})
            assert client.get("/agents").status_code == 200  # reads still work from Postgres
        assert response.status_code == 503
        assert response.json()["code"] == "engine_unavailable"
        with schema_context(alpha.schema_name):
            assert Call.objects.count() == 0


class RebuildDuringAChangeTests:
    """A rebuild that starts while a change has reached Redis but not yet committed to Postgres
    waits for that commit (the tenant's engine advisory lock); it used to rebuild without the
    change, and a committed QUEUED call was then missing from Redis's queue."""

    def test_a_rebuild_waits_for_a_queued_call_that_is_not_committed_yet(self, alpha, monkeypatch) -> None:
        from assignment.services import assign, recovery

        monkeypatch.setattr(recovery, "CLAIMS_WAIT_MS", 60_000)  # the test decides when the change commits
        recorded, release = threading.Event(), threading.Event()
        original = assign._record_claim

        def record_then_hold(**kwargs: object) -> None:
            original(**kwargs)  # type: ignore[arg-type]
            recorded.set()  # in Redis and written, not committed
            assert release.wait(30)

        monkeypatch.setattr(assign, "_record_claim", record_then_hold)
        created: list[Call] = []
        rebuilt: list[bool] = []

        def create() -> None:
            try:
                with schema_context(alpha.schema_name):
                    created.append(make_call())  # no agent: it queues
            finally:
                connection.close()

        def rebuild() -> None:
            try:
                with schema_context(alpha.schema_name):
                    rebuilt.append(recovery.engine_rebuild())
            finally:
                connection.close()

        creator = threading.Thread(target=create)
        creator.start()
        assert recorded.wait(30)
        rebuilder = threading.Thread(target=rebuild)
        rebuilder.start()
        rebuilder.join(0.5)
        # Still waiting: the change in flight holds the tenant's engine lock.
        assert rebuilder.is_alive()
        assert not rebuilt
        release.set()
        creator.join(30)
        rebuilder.join(30)
        assert rebuilt == [True]
        assert len(created) == 1 and created[0].status == Call.Status.QUEUED
        with schema_context(alpha.schema_name):
            assert engine.snapshot(schema_name=alpha.schema_name).queue == [str(created[0].id)]
            assert not engine_drift()

    def test_a_rebuild_that_cannot_wait_goes_on_from_a_snapshot(self, alpha, monkeypatch, caplog) -> None:
        """A change holding the lock too long (a stuck client) delays a rebuild by CLAIMS_WAIT_MS at most."""
        from assignment.services import recovery

        monkeypatch.setattr(recovery, "CLAIMS_WAIT_MS", 100)
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            try:
                with schema_context(alpha.schema_name), transaction.atomic():
                    recovery.engine_lock_shared()
                    holding.set()
                    assert release.wait(30)
            finally:
                connection.close()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert holding.wait(30)
            with schema_context(alpha.schema_name):
                make_agent(name="seen")
                assert recovery.engine_rebuild() is True
                assert [name for (name,) in Agent.objects.values_list("name")] == ["seen"]
                assert len(engine.snapshot(schema_name=alpha.schema_name).idle) == 1
        finally:
            release.set()
            holder.join(30)
        assert "changes still in flight" in caplog.text


class ReconcileCommandTests:
    def test_it_repairs_drift_and_reports_it(self, in_alpha) -> None:
        make_agent(name="x")
        make_call()
        keys = TenantKeys(in_alpha.schema_name)
        engine.client().delete(keys.agent_call)  # corrupt Redis behind the engine's back
        assert engine_drift()
        out = StringIO()
        call_command("reconcile", "--tenant", "alpha", stdout=out)
        assert "agents differ" in out.getvalue() and "rebuilt; in sync" in out.getvalue()
        assert not engine_drift()

    def test_check_mode_fails_on_drift_without_changing_anything(self, in_alpha) -> None:
        make_agent(name="x")
        engine.client().delete(TenantKeys(in_alpha.schema_name).idle)
        from django.core.management.base import CommandError

        with pytest.raises(CommandError):
            call_command("reconcile", "--tenant", "alpha", "--check", stdout=StringIO())
        assert engine_drift()


class HalfMigratedTenantSweepTests:
    def test_the_sweep_skips_a_tenant_whose_schema_is_still_being_migrated(self, alpha, caplog) -> None:
        import logging

        from assignment.tasks import _migrations_pending, sweep_tenant_task
        from tenants.models import Tenant

        # What the sweep sees while tenant_create migrates: the tenant's row, a schema without its tables.
        tenant = Tenant(name="Half", slug="half", schema_name="half")
        tenant.auto_create_schema = False
        tenant.save()
        try:
            with connection.cursor() as cursor:
                cursor.execute('CREATE SCHEMA "half"')
            with caplog.at_level(logging.DEBUG, logger="assignment.tasks"):
                sweep_tenant_task("half")
            with schema_context("half"):
                assert _migrations_pending() is True
            assert "half skipped, its schema is not fully migrated yet" in caplog.text
            assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
        finally:
            tenant.delete(force_drop=True)
            engine.forget_tenant(schema_name="half")

    def test_a_fully_migrated_tenant_is_not_taken_for_one_in_progress(self, in_alpha) -> None:
        from assignment.tasks import _migrations_pending

        assert _migrations_pending() is False  # so a database error of a ready tenant is still raised
