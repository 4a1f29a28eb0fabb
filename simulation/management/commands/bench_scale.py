"""``manage.py bench_scale``: what one operation costs as the work grows (agents, queue length, stored
calls, tenants). In-process, on the real Postgres and Redis: requests go through Django's test client
(the whole middleware and view stack, no socket), engine operations through ``assignment.engine``.

Everything is made in scratch tenants (``scale_...``) that the command drops at the end (unless
``--keep``)."""

from __future__ import annotations

import datetime
import json
import re
import resource
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment import engine
from assignment.benchmark import percentiles
from assignment.services.recovery import engine_rebuild
from callcenter.actors import Actor
from callcenter.fields import encrypt_text
from callcenter.tenancy import tenant_connection
from calls.models import Call, CallType
from routing.selectors import agent_type_get
from routing.services import routing_config, routing_settings_update
from tenants.models import Tenant
from tenants.selectors import tenant_get
from tenants.services import apikey_create, tenant_create, tenant_delete

PREFIX = "scale_"
ACTOR = Actor.system("bench_scale")


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()] if text else []


def _timed(function: Callable[[], Any], repetitions: int) -> dict[str, Any]:
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


class Command(BaseCommand):
    help = (
        "Measure the cost of single operations as the work grows, in scratch tenants on the real Postgres and "
        "Redis: agents per tenant (engine claim + release, GET /agents/available, GET /system/metrics), queue "
        "length (POST /calls that queues, completion that takes the next call), stored calls (GET /calls "
        "variants with their query plans) and tenants (schemas cloned, one call's life, migrate_schemas, memory). "
        "Prints the report; --json writes it. Drops what it made unless --keep."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--agents", default="", help="agents per tenant, comma-separated, e.g. 10,1000,10000 (default: skip)"
        )
        parser.add_argument(
            "--queue", default="", help="waiting calls, comma-separated, e.g. 0,1000,100000 (default: skip)"
        )
        parser.add_argument(
            "--calls", default="", help="stored completed calls, comma-separated, e.g. 1000000 (default: skip)"
        )
        parser.add_argument(
            "--tenants", default="", help="tenant schemas, comma-separated, e.g. 10,100,1000 (default: skip)"
        )
        parser.add_argument(
            "--repetitions", type=int, default=200, help="timed repetitions of each operation (default %(default)s)"
        )
        parser.add_argument("--json", dest="json_file", help="write the report here")
        parser.add_argument("--keep", action="store_true", help="keep the scratch tenants (default: drop them)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.reps = max(1, options["repetitions"])
        self.made: list[Tenant] = []
        report: dict[str, Any] = {
            "repetitions": self.reps,
            "started_at": timezone.now().isoformat(),
            "postgres": connection.cursor().connection.info.server_version,
        }
        try:
            if options["agents"] or options["queue"] or options["calls"]:
                scratch = self._tenant(f"{PREFIX}main")
            parts: list[tuple[str, Callable[[], Any]]] = [
                ("agents", lambda: [self._agents(scratch, n) for n in _sizes(options["agents"])]),
                ("queue", lambda: [self._queue(scratch, n) for n in _sizes(options["queue"])]),
                ("calls", lambda: [self._calls(scratch, n) for n in _sizes(options["calls"])]),
                ("tenants", lambda: self._tenants(_sizes(options["tenants"]), report, options["json_file"])),
            ]
            for name, part in parts:
                if options[name]:
                    report[name] = part()
                    self._write(report, options["json_file"])  # what is done so far survives a later failure
        finally:
            if not options["keep"]:
                self._cleanup()
        self._write(report, options["json_file"])
        self.stdout.write(json.dumps(report, indent=2))

    def _write(self, report: dict[str, Any], json_file: str | None) -> None:
        if json_file:
            Path(json_file).parent.mkdir(parents=True, exist_ok=True)
            Path(json_file).write_text(json.dumps(report, indent=2) + "\n")

    # -- helpers -----------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def _tenant(self, slug: str) -> dict[str, Any]:
        tenant_connection().set_schema_to_public()  # a request through the test client leaves its tenant's schema set
        existing = tenant_get(slug=slug)
        if existing is not None:
            tenant_delete(tenant=existing)
        created = tenant_create(name=slug, slug=slug)
        self.made.append(created.tenant)
        with schema_context(created.tenant.schema_name):
            routing_settings_update(changes={"wrap_up_seconds": 0.0, "max_queue_length": 1_000_000}, actor=ACTOR)
        return {"tenant": created.tenant, "key": created.issued_key.raw_key}

    def _client(self, key: str) -> Client:
        return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")

    def _get(self, client: Client, path: str) -> Any:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        return response

    def _metrics_uncached(self, client: Client, schema: str) -> Any:
        """GET /system/metrics with its one-second cache emptied first (one Redis DEL, included)."""
        with schema_context(schema):
            cache.delete(f"system-metrics:{schema}")
        return self._get(client, "/system/metrics")

    def _empty(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE calls_call, agents_agent CASCADE")

    def _agent_rows(self, count: int, status: str = Agent.Status.AVAILABLE) -> list[Agent]:
        agent_type = agent_type_get(slug="agente_tipo_1")
        assert agent_type is not None
        now = timezone.now()
        rows = [
            Agent(
                name=f"scale agent {n}",
                agent_type=agent_type,
                status=status,
                idle_since=now - datetime.timedelta(milliseconds=count - n)
                if status == Agent.Status.AVAILABLE
                else None,
            )
            for n in range(count)
        ]
        return Agent.objects.bulk_create(rows, batch_size=5000)

    def _insert_calls(self, count: int, *, status: str, agent_ids: list[str] | None = None) -> None:
        """``count`` calls by SQL, one encrypted phone number for all, spread over the call types,
        created one second apart going back from now; completed ones over ``agent_ids``."""
        type_ids = list(CallType.objects.order_by("id").values_list("id", flat=True))
        phone = encrypt_text("+34600000000")
        agents = agent_ids or []
        completed = status == Call.Status.COMPLETED
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO calls_call (id, phone_number, call_type_id, priority, request_fingerprint, status,
                    end_reason, agent_id, created_at, updated_at, queued_at, assigned_at, ended_at, simulated,
                    outcome, actual_duration_seconds)
                SELECT gen_random_uuid(), %s, (%s::bigint[])[1 + g %% %s], 0, '', %s,
                    {"'completed'" if completed else "''"},
                    {"((%s::uuid[])[1 + g %% %s])" if completed and agents else "NULL"},
                    now() - g * interval '1 second', now(),
                    now() - g * interval '1 second',
                    {"now() - g * interval '1 second'" if completed else "NULL"},
                    {"now() - g * interval '1 second' + interval '60 seconds'" if completed else "NULL"},
                    false, {"'OK'" if completed else "NULL"}, {"60" if completed else "NULL"}
                FROM generate_series(1, %s) AS g
                """,
                [phone, type_ids, len(type_ids), status]  # type: ignore[arg-type]
                + ([agents, len(agents)] if completed and agents else [])
                + [count],
            )

    # -- 1. agents ---------------------------------------------------------------------------------

    def _agents(self, scratch: dict[str, Any], count: int) -> dict[str, Any]:
        schema = scratch["tenant"].schema_name
        self._say(f"agents: {count}")
        with schema_context(schema):
            self._empty()
            self._agent_rows(count)
            started = time.perf_counter()
            engine_rebuild()
            rebuild_ms = (time.perf_counter() - started) * 1000
            config = routing_config(force=True)
            type_id = Agent.objects.values_list("agent_type_id", flat=True).first()
            sequence = iter(range(10**9))

            def claim_release() -> None:
                n = next(sequence)
                result = engine.claim(
                    schema_name=schema,
                    call_id=f"scale-{n}",
                    strategy="longest_idle",
                    priority=0,
                    queued_at_ms=n,
                    max_queue_length=1_000_000,
                    type_ids=config.type_ids,
                    p_ok_by_type={t: 0.5 for t in config.type_ids},
                )
                assert result.agent_id, result
                engine.release(
                    schema_name=schema,
                    agent_id=result.agent_id,
                    agent_type_id=type_id or 0,
                    idle_since_ms=engine.to_ms(time.time()),
                    expected_call_id=f"scale-{n}",
                    type_ids=config.type_ids,
                )

            claim = _timed(claim_release, self.reps)
            engine_rebuild()  # back to Postgres's picture
        client = self._client(scratch["key"])
        available = _timed(lambda: self._get(client, "/agents/available"), self.reps)
        metrics_cached = _timed(lambda: self._get(client, "/system/metrics"), self.reps)
        metrics = _timed(lambda: self._metrics_uncached(client, schema), self.reps)
        return {
            "agents": count,
            "engine_rebuild_ms": round(rebuild_ms, 1),
            "claim_release_ms": claim,
            "agents_available_ms": available,
            "system_metrics_ms": metrics,
            "system_metrics_cached_ms": metrics_cached,
        }

    # -- 2. queue ----------------------------------------------------------------------------------

    def _queue(self, scratch: dict[str, Any], count: int) -> dict[str, Any]:
        schema = scratch["tenant"].schema_name
        self._say(f"queue: {count}")
        with schema_context(schema):
            self._empty()
            [agent] = self._agent_rows(1, status=Agent.Status.BUSY)
            busy = Call.objects.create(
                phone_number="+34600000001",
                call_type=CallType.objects.order_by("id")[0],
                status=Call.Status.ASSIGNED,
                agent=agent,
                queued_at=timezone.now(),
                assigned_at=timezone.now(),
            )
            assert busy.pk
            self._insert_calls(count, status=Call.Status.QUEUED)
            started = time.perf_counter()
            engine_rebuild()
            rebuild_ms = (time.perf_counter() - started) * 1000
        client = self._client(scratch["key"])
        phones = iter(range(10**9))

        def enqueue() -> None:
            response = client.post(
                "/calls",
                {"phone_number": f"+3491{next(phones):08d}", "call_type": "llamada_tipo_1"},
                content_type="application/json",
            )
            assert response.status_code == 202, (response.status_code, response.content[:300])

        enqueue_ms = _timed(enqueue, self.reps)
        # Each completion releases the agent, which takes the head of the queue at once: the next
        # repetition completes that call. The queue shrinks by one per repetition.
        samples = []
        for _ in range(self.reps):
            with schema_context(schema):
                call_id = Call.objects.get(status=Call.Status.ASSIGNED).id
            started = time.perf_counter()
            response = client.post(f"/calls/{call_id}/complete", {"outcome": "OK"}, content_type="application/json")
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (response.status_code, response.content[:300])
        with schema_context(schema):
            still_assigned = Call.objects.filter(status=Call.Status.ASSIGNED).count()
        return {
            "queued": count,
            "engine_rebuild_ms": round(rebuild_ms, 1),
            "enqueue_ms": enqueue_ms,
            "complete_take_next_ms": percentiles(samples),
            "next_taken": still_assigned == 1,
        }

    # -- 3. stored calls ---------------------------------------------------------------------------

    def _calls(self, scratch: dict[str, Any], count: int) -> dict[str, Any]:
        schema = scratch["tenant"].schema_name
        self._say(f"calls: {count}")
        with schema_context(schema):
            self._empty()
            agent_ids = [str(a.id) for a in self._agent_rows(100)]
            started = time.perf_counter()
            self._insert_calls(count, status=Call.Status.COMPLETED, agent_ids=agent_ids)
            insert_s = time.perf_counter() - started
            # A rare agent and a rare call type: ten of the oldest calls each, the worst case for a
            # filter that is answered by walking the created_at index newest first.
            [rare_agent] = self._agent_rows(1)
            rare_type, _ = CallType.objects.get_or_create(
                slug="scale_rare", defaults={"name": "Scale rare", "mix_weight": 0}
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE calls_call SET agent_id = %s, call_type_id = %s WHERE id IN "
                    "(SELECT id FROM calls_call ORDER BY created_at LIMIT 10)",
                    [rare_agent.id, rare_type.id],
                )
                cursor.execute("ANALYZE calls_call")
                cursor.execute("SELECT pg_total_relation_size('calls_call')")
                table_bytes = cursor.fetchone()[0]
            engine_rebuild()
            type_slug = CallType.objects.order_by("id").values_list("slug", flat=True)[1]
        client = self._client(scratch["key"])
        first = self._get(client, "/calls").json()
        cursor_url = first["next"] or "/calls"
        for _ in range(9):  # ten pages deep (or the last page)
            cursor_url = self._get(client, cursor_url).json()["next"] or cursor_url
        deep = urllib.parse.urlsplit(cursor_url)
        after = (timezone.now() - datetime.timedelta(hours=1)).isoformat()
        variants = {
            "first page": "/calls",
            "ten pages deep (cursor)": f"{deep.path}?{deep.query}",
            "status=COMPLETED": "/calls?status=COMPLETED",
            "agent_id": f"/calls?agent_id={agent_ids[1]}",
            "call_type": f"/calls?call_type={type_slug}",
            "agent_id (an agent with 10 old calls)": f"/calls?agent_id={rare_agent.id}",
            "call_type (a type with 10 old calls)": "/calls?call_type=scale_rare",
            "created_after (last hour)": "/calls?" + urllib.parse.urlencode({"created_after": after}),
            "GET /system/metrics (uncached)": "/system/metrics",
        }
        results = []
        for label, path in variants.items():
            self._say(f"  {label}")

            def fetch(path: str = path) -> Any:
                if path == "/system/metrics":
                    return self._metrics_uncached(client, schema)
                return self._get(client, path)

            timing = _timed(fetch, max(5, self.reps // 4))
            with CaptureQueriesContext(connection) as captured:
                fetch()
            plans: list[dict[str, Any]] = []
            with schema_context(schema), connection.cursor() as cursor:
                for query in captured.captured_queries:
                    sql = query["sql"]
                    if "calls_call" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                        continue
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    removed = sum(int(n) for n in re.findall(r"Rows Removed by (?:Join )?Filter: (\d+)", plan))
                    plans.append(
                        {
                            "sql": sql,
                            "plan": plan,
                            "seq_scan_on_calls": "Seq Scan on calls_call" in plan,
                            "rows_removed_by_filter": removed,
                        }
                    )
            results.append(
                {
                    "variant": label,
                    "path": path,
                    "ms": timing,
                    "queries": len(captured.captured_queries),
                    "plans": plans,
                    # Served by an index: no sequential scan of the table, and the rows read and
                    # thrown away are fewer than a page's worth times ten.
                    "index_served": not any(p["seq_scan_on_calls"] or p["rows_removed_by_filter"] > 500 for p in plans),
                    "rows_removed_by_filter": sum(p["rows_removed_by_filter"] for p in plans),
                }
            )
        with schema_context(schema):
            self._empty()
        return {"calls": count, "insert_seconds": round(insert_s, 1), "table_bytes": table_bytes, "lists": results}

    # -- 4. tenants --------------------------------------------------------------------------------

    def _tenants(self, sizes: list[int], report: dict[str, Any], json_file: str | None) -> list[dict[str, Any]]:
        base = self._tenant(f"{PREFIX}base")
        base_schema = base["tenant"].schema_name
        with schema_context(base_schema):
            self._agent_rows(1)
        cloner = CloneSchema()
        keys: list[str] = []
        process = psutil.Process()
        rows = []
        for size in sorted(sizes):
            clone_ms = []
            while len(keys) < size:
                slug = f"{PREFIX}t{len(keys):04d}"
                stale = tenant_get(slug=slug)
                if stale is not None:
                    tenant_delete(tenant=stale)
                started = time.perf_counter()
                cloner.clone_schema(base_schema, slug)
                tenant_connection().set_schema_to_public()
                tenant = Tenant(name=slug, slug=slug, schema_name=slug)
                tenant.auto_create_schema = False
                tenant.save()
                clone_ms.append((time.perf_counter() - started) * 1000)
                self.made.append(tenant)
                keys.append(apikey_create(tenant=tenant, name="scale", scope="write", actor=ACTOR).raw_key)
                if len(keys) % 50 == 0:
                    self._say(f"tenants: {len(keys)} schemas")
            self._say(f"tenants: {size}")
            tenant_connection().set_schema_to_public()
            rss_before = process.memory_info().rss
            for key in keys[:size]:
                self._get(self._client(key), "/agents/available")
            rss_after = process.memory_info().rss
            client = self._client(keys[0])
            phones = iter(range(10**9))

            def call_life(client: Client = client, phones: Any = phones) -> None:
                created = client.post(
                    "/calls",
                    {"phone_number": f"+3492{next(phones):08d}", "call_type": "llamada_tipo_1"},
                    content_type="application/json",
                )
                assert created.status_code == 201, (created.status_code, created.content[:300])
                done = client.post(
                    f"/calls/{created.json()['id']}/complete", {"outcome": "OK"}, content_type="application/json"
                )
                assert done.status_code == 200, (done.status_code, done.content[:300])

            life = _timed(call_life, self.reps)
            tenant_connection().set_schema_to_public()
            started = time.perf_counter()
            call_command("migrate_schemas", interactive=False, verbosity=0)
            migrate_s = time.perf_counter() - started
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", [f"{PREFIX}%"])
                schemas = cursor.fetchone()[0]
                cursor.execute("SELECT pg_database_size(current_database())")
                db_bytes = cursor.fetchone()[0]
            rows.append(
                {
                    "tenants": size,
                    "schemas_in_database": schemas,
                    "clone_ms": percentiles(clone_ms),
                    "call_life_ms": life,
                    "migrate_schemas_seconds": round(migrate_s, 2),
                    "rss_bytes_before_requests": rss_before,
                    "rss_bytes_after_one_request_each": rss_after,
                    "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                    "database_bytes": db_bytes,
                }
            )
            report["tenants"] = rows
            self._write(report, json_file)  # each size as soon as it is measured
        return rows

    def _cleanup(self) -> None:
        tenant_connection().set_schema_to_public()
        self._say(f"dropping {len(self.made)} scratch tenants")
        for tenant in reversed(self.made):
            engine.forget_tenant(schema_name=tenant.schema_name)
            stale = list(engine.client().scan_iter(match=f"{tenant.schema_name}:cache:*", count=500))
            if stale:
                engine.client().delete(*stale)
            if Tenant.objects.filter(pk=tenant.pk).exists():
                tenant_delete(tenant=tenant)
        self.made = []
        # A clone interrupted before its tenant row was saved leaves a schema of no tenant.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s AND nspname NOT IN "
                "(SELECT schema_name FROM tenants_tenant)",
                [f"{PREFIX}t%"],
            )
            for (orphan,) in cursor.fetchall():
                cursor.execute(f'DROP SCHEMA "{orphan}" CASCADE')
