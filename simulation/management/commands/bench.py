from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from agents.models import Agent
from agents.services import agent_create
from assignment.benchmark import TenantTarget, engine_microbench, run_open_loop, summarize
from assignment.services.recovery import engine_drift
from callcenter.actors import Actor
from routing.selectors import agent_type_get
from tenants.banner import web_port
from tenants.selectors import tenant_get
from tenants.services import apikey_create, tenant_create

KEYS_FILE = Path(settings.BASE_DIR) / ".local" / "bench-keys.json"


class Command(BaseCommand):
    help = (
        "Benchmark a running server open-loop (POST /calls then complete) across several tenants, or the "
        "Redis claim alone (--engine). Prints percentiles and throughput; --json writes the full report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            help="the running web server (default: http://127.0.0.1:PORT, the port as `make info` finds it: "
            "$WEB_PORT, else $PORT, else the port of the last `make run`, else 8000)",
        )
        parser.add_argument(
            "--tenants", type=int, default=10, help="tenants to spread the load over (created if missing; default 10)"
        )
        parser.add_argument("--agents", type=int, default=50, help="agents per tenant (default %(default)s)")
        parser.add_argument(
            "--rate", type=float, default=100.0, help="new calls per second, all tenants together (default %(default)s)"
        )
        parser.add_argument("--duration", type=float, default=30.0, help="seconds of traffic (default %(default)s)")
        parser.add_argument("--workers", type=int, default=16, help="client threads (default %(default)s)")
        parser.add_argument("--engine", action="store_true", help="measure the Redis claim alone, no HTTP")
        parser.add_argument(
            "--iterations", type=int, default=20_000, help="with --engine: claims to time (default %(default)s)"
        )
        parser.add_argument("--json", dest="json_file", help="write the report here")

    def handle(self, *args: Any, **options: Any) -> None:
        options["url"] = options["url"] or f"http://127.0.0.1:{web_port()}"
        if options["engine"]:
            # Progress on stderr, so that stdout stays the JSON report.
            self.stderr.write(f"Engine: {options['iterations']} claims and releases through Redis...")
            report: dict[str, Any] = engine_microbench(
                iterations=options["iterations"], progress=lambda line: self.stderr.write(line)
            )
            self.stdout.write(json.dumps(report, indent=2))
        else:
            targets = self._prepare(options["tenants"], options["agents"])
            self.stdout.write(
                f"Open loop: {options['rate']} calls/s for {options['duration']} s over {len(targets)} tenants "
                f"({options['agents']} agents each), {options['workers']} client threads -> {options['url']}"
            )
            results, wall = run_open_loop(
                base_url=options["url"],
                targets=targets,
                rate=options["rate"],
                duration=options["duration"],
                workers=options["workers"],
                progress=lambda line: self.stdout.write(line),
            )
            report = summarize(results, wall)
            report["invariants"] = self._invariants(targets)
            report["parameters"] = {k: options[k] for k in ("url", "tenants", "agents", "rate", "duration", "workers")}
            self._print(report)
        if options["json_file"]:
            Path(options["json_file"]).write_text(json.dumps(report, indent=2))
            self.stdout.write(f"Report written to {options['json_file']}")
        if not options["engine"] and (report["errors"] or not report["invariants"]["ok"]):
            raise CommandError("benchmark found errors or broken invariants")

    def _prepare(self, count: int, agents: int) -> list[TenantTarget]:
        KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
        keys: dict[str, str] = json.loads(KEYS_FILE.read_text()) if KEYS_FILE.exists() else {}
        targets = []
        for n in range(1, count + 1):
            slug = f"bench{n}"
            tenant = tenant_get(slug=slug)
            if tenant is None:
                self.stdout.write(f"creating tenant {slug}")
                created = tenant_create(name=f"Bench {n}", slug=slug)
                tenant, keys[slug] = created.tenant, created.issued_key.raw_key
            elif slug not in keys:
                keys[slug] = apikey_create(
                    tenant=tenant, name="bench", scope="write", actor=Actor.system("bench")
                ).raw_key
            with schema_context(tenant.schema_name):
                existing = Agent.objects.count()
                agent_type = agent_type_get(slug="agente_tipo_1")
                assert agent_type is not None
                for index in range(existing, agents):
                    agent_create(
                        name=f"bench agent {index}",
                        agent_type=agent_type,
                        status="AVAILABLE",
                        actor=Actor.system("bench"),
                    )
            targets.append(TenantTarget(slug=slug, api_key=keys[slug]))
        KEYS_FILE.write_text(json.dumps(keys, indent=2))
        KEYS_FILE.chmod(0o600)
        return targets

    def _invariants(self, targets: list[TenantTarget]) -> dict[str, Any]:
        from calls.models import Call

        out: dict[str, Any] = {"ok": True, "tenants": {}}
        for target in targets:
            tenant = tenant_get(slug=target.slug)
            assert tenant is not None
            with schema_context(tenant.schema_name):
                open_calls = Call.objects.filter(status__in=[Call.Status.QUEUED, Call.Status.ASSIGNED]).count()
                double = Call.objects.filter(status=Call.Status.ASSIGNED).values("agent_id").distinct().count() != (
                    Call.objects.filter(status=Call.Status.ASSIGNED).count()
                )
                drift = engine_drift()
            ok = open_calls == 0 and not double and not drift
            out["tenants"][target.slug] = {
                "open_calls": open_calls,
                "double_assigned": double,
                "drift": drift.summary() if drift else "",
            }
            out["ok"] = out["ok"] and ok
        return out

    def _print(self, report: dict[str, Any]) -> None:
        w = self.stdout.write
        w(f"calls created: {report['calls_created']} in {report['wall_seconds']} s "
          f"= {report['throughput_calls_per_second']}/s ({report['throughput_calls_per_hour']}/h)")  # fmt: skip
        w(f"statuses: {report['statuses']}  errors: {report['errors']}")
        for name in ("server_assignment_ms", "client_create_ms", "client_complete_ms"):
            w(f"{name:>22}: {report[name]}")
        invariants = report["invariants"]
        w(f"invariants: {'OK' if invariants['ok'] else 'BROKEN ' + json.dumps(invariants)}")
        sys.stdout.flush()
