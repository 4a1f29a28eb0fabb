"""``manage.py bench_scale``: how the cost of the work grows with tenants, agents and queue length.

In-process (no server): the Redis scripts are timed through the engine, requests through Django's
test client against real Postgres and Redis. Everything it creates (tenant schemas, Redis keys) is
dropped at the end, also when it fails.
"""

from __future__ import annotations

import datetime
import json
import resource
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import Agent
from agents.services import agent_create
from assignment import engine
from assignment.benchmark import percentiles
from callcenter import clock
from callcenter.actors import Actor
from callcenter.tenancy import tenant_connection
from calls.models import Call, CallType
from calls.selectors import call_list
from routing.selectors import agent_type_get
from routing.services import routing_settings_update
from tenants.selectors import tenant_get
from tenants.services import tenant_create, tenant_delete

ENGINE_SCHEMA = "bench_scale_engine"
TENANT_PREFIX = "bscale"
AGENTS_PER_TENANT = 5
LIST_TENANT = "bscalelist"
LIST_AGENTS = 50


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _request(
    client: Client, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
) -> tuple[Any, float, float]:
    """One request through the test client: the response, and the wall and CPU milliseconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "get":
        response = client.get(path, headers=headers)
    else:
        response = client.post(path, data=body, content_type="application/json", headers=headers)
    return response, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Command(BaseCommand):
    help = (
        "Measure how the cost grows: the Redis claim and release against agents per tenant, enqueue and "
        "release-and-take-next against queue length, and one request, tenant creation, migrate_schemas and "
        "memory against the number of tenants. In-process; drops what it creates; --json writes the report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--agents", default="10,1000,10000", help="agents per tenant to time the claim at (default %(default)s)"
        )
        parser.add_argument(
            "--queue",
            default="0,1000,100000",
            help="waiting calls to time enqueue and release at (default %(default)s)",
        )
        parser.add_argument(
            "--tenants", default="10,100", help="tenant counts to time one request at (default %(default)s)"
        )
        parser.add_argument(
            "--calls",
            type=int,
            default=1_000_000,
            help="calls stored in one tenant to time the lists at, bulk-inserted; 0 skips it (default %(default)s)",
        )
        parser.add_argument(
            "--repeat", type=int, default=2000, help="timed repetitions per engine measurement (default %(default)s)"
        )
        parser.add_argument(
            "--requests", type=int, default=200, help="timed requests per tenant count (default %(default)s)"
        )
        parser.add_argument(
            "--skip", default="", help="comma-separated parts to skip: engine, queue, tenants (default none)"
        )
        parser.add_argument("--json", dest="json_file", help="write the report here (default: print it only)")

    def handle(self, *args: Any, **options: Any) -> None:
        skip = {part.strip() for part in options["skip"].split(",") if part.strip()}
        report: dict[str, Any] = {"repeat": options["repeat"], "requests": options["requests"]}
        try:
            if "engine" not in skip:
                report["agents"] = [self._agents(n, options["repeat"]) for n in _sizes(options["agents"])]
            if "queue" not in skip:
                report["queue"] = [self._queue(n, options["repeat"]) for n in _sizes(options["queue"])]
            if options["calls"]:
                report["lists"] = self._lists(options["calls"], options["requests"])
            if "tenants" not in skip:
                report["tenants"] = self._tenants(_sizes(options["tenants"]), options["requests"])
        finally:
            engine.forget_tenant(schema_name=ENGINE_SCHEMA)
            self._drop_tenants()
        text = json.dumps(report, indent=2)
        if options["json_file"]:
            Path(options["json_file"]).write_text(text + "\n")
            self.stdout.write(f"Report written to {options['json_file']}")
        else:
            self.stdout.write(text)

    # Engine: agents per tenant -------------------------------------------------------------------

    def _agents(self, agents: int, repeat: int) -> dict[str, Any]:
        engine.forget_tenant(schema_name=ENGINE_SCHEMA)
        idle = [(f"agent-{n:06d}", 1, 1000 + n) for n in range(agents)]
        engine.rebuild(schema_name=ENGINE_SCHEMA, state=engine.RebuildInput(idle, [], [], []), epoch="b", type_ids=(1,))
        claim_ms, release_ms = [], []
        for n in range(repeat):
            started = time.perf_counter()
            result = engine.claim(
                schema_name=ENGINE_SCHEMA, call_id=f"c{n}", strategy="longest_idle", priority=0, queued_at_ms=n,
                max_queue_length=1_000_000, type_ids=(1,), p_ok_by_type={1: 0.5},
            )  # fmt: skip
            claim_ms.append((time.perf_counter() - started) * 1000)
            assert result.outcome == "ASSIGNED", result
            started = time.perf_counter()
            engine.release(
                schema_name=ENGINE_SCHEMA, agent_id=result.agent_id or "", agent_type_id=1,
                idle_since_ms=10_000_000 + n, expected_call_id=f"c{n}", type_ids=(1,),
            )  # fmt: skip
            release_ms.append((time.perf_counter() - started) * 1000)
        engine.forget_tenant(schema_name=ENGINE_SCHEMA)
        self.stderr.write(f"agents {agents}: claim p50 {percentiles(claim_ms)['p50']} ms")
        return {"agents": agents, "claim_ms": percentiles(claim_ms), "release_ms": percentiles(release_ms)}

    # Engine: queue length ------------------------------------------------------------------------

    def _queue(self, waiting: int, repeat: int) -> dict[str, Any]:
        """One busy agent and ``waiting`` calls in the queue. Each round: the agent finishes (release takes the
        head of the queue, or goes idle when there is none), then a new call arrives (enqueued behind the others,
        or assigned to the idle agent): the queue keeps its length."""
        engine.forget_tenant(schema_name=ENGINE_SCHEMA)
        queue = [(f"q{n}", engine.queue_score(priority=0, queued_at_ms=n)) for n in range(waiting)]
        for start in range(0, max(waiting, 1), 20_000):
            chunk = queue[start : start + 20_000]
            if start == 0:
                state = engine.RebuildInput([], [("agent-0", 1, "busy-0")], [], chunk)
                engine.rebuild(schema_name=ENGINE_SCHEMA, state=state, epoch="b", type_ids=(1,))
            else:  # the rest through claims: each queues behind the others, since the only agent is busy
                for call_id, score in chunk:
                    engine.claim(
                        schema_name=ENGINE_SCHEMA, call_id=call_id, strategy="longest_idle", priority=0,
                        queued_at_ms=score, max_queue_length=10_000_000, type_ids=(1,), p_ok_by_type={1: 0.5},
                    )  # fmt: skip
        depth, _ = engine.queue_depth(schema_name=ENGINE_SCHEMA)
        assert depth == waiting, (depth, waiting)
        current = "busy-0"
        enqueue_ms, release_ms = [], []
        outcomes: dict[str, int] = {}
        for n in range(repeat):
            started = time.perf_counter()
            released = engine.release(
                schema_name=ENGINE_SCHEMA, agent_id="agent-0", agent_type_id=1, idle_since_ms=10_000_000 + n,
                expected_call_id=current, type_ids=(1,),
            )  # fmt: skip
            release_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            claimed = engine.claim(
                schema_name=ENGINE_SCHEMA, call_id=f"new{n}", strategy="longest_idle", priority=0,
                queued_at_ms=10_000_000 + n, max_queue_length=10_000_000, type_ids=(1,), p_ok_by_type={1: 0.5},
            )  # fmt: skip
            enqueue_ms.append((time.perf_counter() - started) * 1000)
            key = f"{released.outcome}/{claimed.outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1
            current = (released.call_id or "") if released.outcome == "ASSIGNED" else f"new{n}"
        engine.forget_tenant(schema_name=ENGINE_SCHEMA)
        self.stderr.write(f"queue {waiting}: enqueue p50 {percentiles(enqueue_ms)['p50']} ms, {outcomes}")
        return {
            "waiting": waiting,
            "outcomes": outcomes,
            "release_take_next_ms": percentiles(release_ms),
            "arrive_ms": percentiles(enqueue_ms),
        }

    # Tenants ------------------------------------------------------------------------------------

    def _tenants(self, counts: list[int], requests: int) -> list[dict[str, Any]]:
        keys: list[str] = []
        out = []
        for count in counts:
            create_ms: list[float] = []
            while len(keys) < count:
                slug = f"{TENANT_PREFIX}{len(keys) + 1}"
                engine.forget_tenant(schema_name=slug)  # no state left by an earlier run that was killed
                started = time.perf_counter()
                created = tenant_create(name=slug, slug=slug)
                create_ms.append((time.perf_counter() - started) * 1000)
                keys.append(created.issued_key.raw_key)
                with schema_context(created.tenant.schema_name):
                    agent_type = agent_type_get(slug="agente_tipo_1")
                    assert agent_type is not None
                    routing_settings_update(changes={"wrap_up_seconds": 0.0}, actor=Actor.system("bench"))
                    for index in range(AGENTS_PER_TENANT):
                        agent_create(
                            name=f"agent {index}", agent_type=agent_type, status="AVAILABLE",
                            actor=Actor.system("bench"),
                        )  # fmt: skip
            client = Client()
            rss_before = _rss_mib()
            post_ms, complete_ms, agents_ms, cpu_ms = [], [], [], []
            for n in range(requests):
                headers = {"Authorization": f"Bearer {keys[n % len(keys)]}"}
                body = {"phone_number": f"+3490{n:08d}", "call_type": "llamada_tipo_1"}
                response, wall, cpu = _request(client, "post", "/calls", headers, body)
                assert response.status_code == 201, (response.status_code, response.content[:300])
                post_ms.append(wall)
                cpu_ms.append(cpu)
                path = f"/calls/{response.json()['id']}/complete"
                response, wall, _ = _request(client, "post", path, headers, {})
                assert response.status_code == 200, (response.status_code, response.content[:300])
                complete_ms.append(wall)
                response, wall, _ = _request(client, "get", "/agents", headers, None)
                assert response.status_code == 200, response.status_code
                agents_ms.append(wall)
            tenant_connection().set_schema_to_public()  # a test-client request may leave its tenant
            started = time.perf_counter()
            call_command("migrate_schemas", verbosity=0)
            migrate_s = time.perf_counter() - started
            row: dict[str, Any] = {
                "tenants": count,
                "post_calls_ms": percentiles(post_ms),
                "post_calls_cpu_ms": percentiles(cpu_ms),
                "complete_ms": percentiles(complete_ms),
                "get_agents_ms": percentiles(agents_ms),
                "tenant_create_ms": percentiles(create_ms),
                "migrate_schemas_up_to_date_s": round(migrate_s, 2),
                "rss_mib_before": rss_before,
                "rss_mib_after": _rss_mib(),
            }
            self.stderr.write(f"tenants {count}: POST /calls p50 {row['post_calls_ms'].get('p50')} ms")
            out.append(row)
        return out

    # Lists over many stored calls ---------------------------------------------------------------

    def _lists(self, calls: int, requests: int) -> dict[str, Any]:
        """``calls`` ended calls in one tenant, inserted by one INSERT ... SELECT generate_series (one call a
        second back from now, spread over the tenant's agents and call types, one encrypted phone number for
        all), then each list and filter timed through the test client, with the plan of its query."""
        slug = LIST_TENANT
        engine.forget_tenant(schema_name=slug)
        created = tenant_create(name=slug, slug=slug)
        headers = {"Authorization": f"Bearer {created.issued_key.raw_key}"}
        with schema_context(slug):
            agent_type = agent_type_get(slug="agente_tipo_1")
            assert agent_type is not None
            for index in range(LIST_AGENTS):
                agent_create(
                    name=f"agent {index}", agent_type=agent_type, status="OFFLINE", actor=Actor.system("bench")
                )
            phone = Call._meta.get_field("phone_number").get_prep_value("+34600000000")
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO calls_call (id, phone_number, priority, request_fingerprint, status, end_reason,
                        created_at, updated_at, assigned_at, ended_at, agent_id, call_type_id, simulated, outcome)
                    SELECT gen_random_uuid(), %s, 0, '', s.status, 'completed',
                        now() - make_interval(secs => g), now() - make_interval(secs => g),
                        now() - make_interval(secs => g), now() - make_interval(secs => g - 60),
                        a.ids[1 + g %% array_length(a.ids, 1)], t.ids[1 + g %% array_length(t.ids, 1)], false,
                        CASE WHEN s.status = 'COMPLETED' THEN 'OK' END
                    FROM generate_series(1, %s) AS g,
                        (SELECT array_agg(id ORDER BY id) AS ids FROM agents_agent) AS a,
                        (SELECT array_agg(id ORDER BY id) AS ids FROM calls_calltype) AS t,
                        LATERAL (SELECT CASE WHEN g %% 10 = 0 THEN 'ABANDONED' ELSE 'COMPLETED' END AS status) AS s
                    """,
                    [phone, calls],
                )
                cursor.execute("ANALYZE calls_call")
            insert_s = round(time.perf_counter() - started, 1)
            agent_id = str(Agent.objects.order_by("id").values_list("id", flat=True)[0])
            call_type = CallType.objects.order_by("id").values_list("slug", flat=True)[0]
        client = Client()
        first = client.get("/calls?limit=50", headers=headers).json()
        cursor_path = first.get("next") or "/calls?limit=50"
        for _ in range(20):  # 20 pages deep along the cursor
            page = client.get(cursor_path, headers=headers).json()
            cursor_path = page.get("next") or cursor_path
        after = (clock.now() - datetime.timedelta(hours=1)).isoformat()
        paths = {
            "GET /calls": "/calls",
            "GET /calls, page 21 by cursor": cursor_path,
            "GET /calls?status=ABANDONED": "/calls?status=ABANDONED",
            "GET /calls?agent_id=<id>": f"/calls?agent_id={agent_id}",
            "GET /calls?call_type=<slug>": f"/calls?call_type={call_type}",
            "GET /calls?created_after=<1 h ago>": "/calls?" + urlencode({"created_after": after}),
            "GET /agents": "/agents",
            "GET /agents/available": "/agents/available",
            "GET /system/metrics": "/system/metrics",
        }
        timings: dict[str, Any] = {}
        for name, path in paths.items():
            elapsed = []
            for _ in range(max(requests // 10, 3)):
                response, wall, _ = _request(client, "get", path, headers, None)
                assert response.status_code == 200, (name, response.status_code, response.content[:300])
                elapsed.append(wall)
            timings[name] = percentiles(elapsed)
            self.stderr.write(f"{calls} calls, {name}: p50 {timings[name]['p50']} ms")
        tenant_connection().set_schema_to_public()  # a request through the test client may leave its tenant selected
        return {"calls": calls, "insert_seconds": insert_s, "requests_ms": timings, "plans": self._plans(agent_id)}

    def _plans(self, agent_id: str) -> dict[str, str]:
        """EXPLAIN (ANALYZE, BUFFERS) of the first page of GET /calls with each filter, as call_list builds it."""
        queries = {
            "no filter": call_list(),
            "status": call_list(status="ABANDONED"),
            "agent": call_list(agent_id=agent_id),
            "created_after": call_list(created_after=clock.now() - datetime.timedelta(hours=1)),
        }
        plans = {}
        with schema_context(LIST_TENANT):
            for name, queryset in queries.items():
                plans[name] = queryset[:51].explain(analyze=True, buffers=True)
        return plans

    def _drop_tenants(self) -> None:
        if (tenant := tenant_get(slug=LIST_TENANT)) is not None:
            tenant_delete(tenant=tenant)
        engine.forget_tenant(schema_name=LIST_TENANT)
        n = 1
        while (tenant := tenant_get(slug=f"{TENANT_PREFIX}{n}")) is not None:
            tenant_delete(tenant=tenant)
            engine.forget_tenant(schema_name=tenant.schema_name)  # its Redis state goes with the schema
            n += 1
