from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from agents.models import Agent
from agents.services import agent_create
from assignment.benchmark import (
    Results,
    TenantTarget,
    complete_open_calls,
    engine_microbench,
    run_open_loop,
    summarize,
)
from assignment.services.recovery import engine_drift
from callcenter.actors import Actor
from routing.selectors import agent_type_get
from routing.services import routing_config, routing_settings_update
from simulation import loadgen
from tenants.banner import web_port
from tenants.selectors import tenant_get
from tenants.services import apikey_create, tenant_create

KEYS_FILE = Path(settings.BASE_DIR) / ".local" / "bench-keys.json"
OPEN_LOOP_RATE = 100.0
OPEN_LOOP_DURATION = 30.0
REFERENCE_DURATION = 120.0
PAUSE_BETWEEN_RUNS_SECONDS = 1.0
OPEN_LOOP_WARMUP_CONNECTIONS = 4


class Command(BaseCommand):
    help = (
        "Benchmark a running server: open loop (POST /calls then complete) across several tenants, the "
        "reference load (--preset reference), the product against the floor in a closed loop (--compare), "
        "or the Redis claim alone (--engine). Prints the results; --json writes the full report, and "
        "--table renders a report as Markdown."
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
            "--rate",
            type=float,
            help=f"new calls per second, all tenants together (default {OPEN_LOOP_RATE:g}; "
            "the reference preset's is 10 x 1,000 calls an hour)",
        )
        parser.add_argument(
            "--duration",
            type=float,
            help=f"seconds of open-loop traffic (default {OPEN_LOOP_DURATION:g}; "
            f"{REFERENCE_DURATION:g} with --preset reference)",
        )
        parser.add_argument("--workers", type=int, default=16, help="client threads (default %(default)s)")
        parser.add_argument(
            "--preset",
            choices=["reference"],
            help="reference: the reference load, 10 tenants x 1,000 calls an hour x 50 agents, open loop, "
            f"judged against server-side assignment p99 < {loadgen.REFERENCE_SERVER_P99_MS:g} ms and client p99 "
            f"< {loadgen.REFERENCE_CLIENT_P99_MS:g} ms",
        )
        parser.add_argument(
            "--compare",
            metavar="FLOOR_URL",
            help="closed loop: drive the floor at FLOOR_URL and the product at --url alternately, with the same "
            "lifecycle, and print each round and the ratios product/floor (starts neither server)",
        )
        parser.add_argument(
            "--connections",
            default="1,4,16",
            help="with --compare: connection counts, comma-separated, one client per connection (default %(default)s)",
        )
        parser.add_argument(
            "--rounds", type=int, default=3, help="with --compare: rounds per connection count (default %(default)s)"
        )
        parser.add_argument(
            "--seconds", type=float, default=20.0, help="with --compare: seconds per run (default %(default)s)"
        )
        parser.add_argument(
            "--warmup",
            type=float,
            default=3.0,
            help="seconds of unrecorded closed-loop load before measuring, so that no measured request pays for a "
            "worker's first requests: with --compare on each server at the largest connection count, in open loop "
            f"spread over the tenants, {OPEN_LOOP_WARMUP_CONNECTIONS} connections each (its errors still count; "
            "0 skips it; default %(default)s)",
        )
        parser.add_argument(
            "--tenant",
            default="bench1",
            help="with --compare: the product tenant to drive (created if missing, with --agents available "
            "agents and no wrap-up; default %(default)s)",
        )
        parser.add_argument(
            "--client",
            choices=["auto", "wrk", "python"],
            default="auto",
            help="with --compare: the load generator, wrk with the lifecycle script or a Python client that "
            "takes more CPU (default %(default)s: wrk when installed)",
        )
        parser.add_argument("--engine", action="store_true", help="measure the Redis claim alone, no HTTP")
        parser.add_argument(
            "--iterations", type=int, default=20_000, help="with --engine: claims to time (default %(default)s)"
        )
        parser.add_argument("--json", dest="json_file", help="write the report here")
        parser.add_argument(
            "--table",
            metavar="REPORT",
            help="print the Markdown table of a report that --json wrote (--compare or open loop) and exit; "
            "no server needed",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["table"]:
            try:
                self.stdout.write(loadgen.markdown(json.loads(Path(options["table"]).read_text())), ending="")
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(f"cannot render {options['table']}: {exc}") from exc
            return
        options["url"] = options["url"] or f"http://127.0.0.1:{web_port()}"
        if options["engine"]:
            # Progress on stderr, so that stdout stays the JSON report.
            self.stderr.write(f"Engine: {options['iterations']} claims and releases through Redis...")
            report: dict[str, Any] = engine_microbench(
                iterations=options["iterations"], progress=lambda line: self.stderr.write(line)
            )
            self.stdout.write(json.dumps(report, indent=2))
            failed = False
        elif options["compare"]:
            report = self._compare(options)
            failed = report["errors"] > 0 or not report["invariants"]["ok"]
        else:
            report = self._open_loop(options)
            failed = report["errors"] > 0 or not report["invariants"]["ok"]
        if options["json_file"]:
            Path(options["json_file"]).write_text(json.dumps(report, indent=2))
            self.stdout.write(f"Report written to {options['json_file']}")
        if failed:
            raise CommandError("benchmark found errors or broken invariants")

    # Open loop and the reference preset -----------------------------------------------------------

    def _open_loop(self, options: dict[str, Any]) -> dict[str, Any]:
        if options["preset"] == "reference":
            if options["rate"] is not None:
                raise CommandError("--preset reference sets the rate (10 tenants x 1,000 calls an hour); drop --rate")
            if (options["tenants"], options["agents"]) != (loadgen.REFERENCE_TENANTS, loadgen.REFERENCE_AGENTS):
                raise CommandError("--preset reference is 10 tenants of 50 agents; drop --tenants and --agents")
            options["rate"] = loadgen.REFERENCE_TENANTS * loadgen.REFERENCE_CALLS_PER_HOUR / 3600
            options["duration"] = options["duration"] or REFERENCE_DURATION
        options["rate"] = options["rate"] or OPEN_LOOP_RATE
        options["duration"] = options["duration"] or OPEN_LOOP_DURATION
        try:
            if not loadgen.answers(options["url"]):
                raise CommandError(f"nothing answers at {options['url']}: start the server first (bench starts none)")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        targets = self._prepare([f"bench{n}" for n in range(1, options["tenants"] + 1)], options["agents"])
        warmup = self._open_loop_warmup(options["url"], targets, options["warmup"])
        self.stdout.write(
            f"Open loop: {options['rate']:g} calls/s for {options['duration']:g} s over {len(targets)} tenants "
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
        report["warmup"] = warmup
        report["errors"] += warmup["errors"]
        report["mode"] = "open_loop"
        report["preset"] = options["preset"]
        report["invariants"] = self._invariants(targets)
        report["parameters"] = {k: options[k] for k in ("url", "tenants", "agents", "rate", "duration", "workers")}
        if options["preset"] == "reference":
            report["targets"] = loadgen.reference_targets(report)
        self._print(report)
        return report

    def _open_loop_warmup(self, url: str, targets: list[TenantTarget], seconds: float) -> dict[str, Any]:
        """Closed-loop lifecycles on each tenant in turn, not recorded: every web worker then has each
        tenant's configuration and engine state at hand before the first measured request."""
        out: dict[str, Any] = {"seconds": seconds, "lifecycles": 0, "errors": 0, "error_samples": []}
        if seconds <= 0:
            return out
        self.stdout.write(f"Warm-up: {seconds:g} s over {len(targets)} tenants (not recorded)")
        for target in targets:
            raw = loadgen.run_python(
                url, connections=OPEN_LOOP_WARMUP_CONNECTIONS, seconds=seconds / len(targets), key=target.api_key
            )
            run = loadgen.run_result(
                raw, side="product", round=0, connections=OPEN_LOOP_WARMUP_CONNECTIONS, client="python"
            )
            failures = loadgen.complete_calls(url, target.api_key, run.left_open)
            out["lifecycles"] += run.lifecycles
            out["errors"] += run.errors + len(failures)
            out["error_samples"] = (out["error_samples"] + run.error_samples + failures)[:10]
        if out["errors"]:
            self.stdout.write(f"  warm-up errors: {out['errors']} {out['error_samples'][:3]}")
        return out

    # The floor comparison ----------------------------------------------------------------------------

    def _compare(self, options: dict[str, Any]) -> dict[str, Any]:
        floor_url, product_url = options["compare"].rstrip("/"), options["url"].rstrip("/")
        try:
            connection_counts = loadgen.parse_connections(options["connections"])
            for url in (floor_url, product_url):
                if not loadgen.answers(url):
                    raise CommandError(f"nothing answers at {url}: start the server first (bench starts none)")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["rounds"] < 1 or options["seconds"] <= 0 or options["warmup"] < 0:
            raise CommandError("--rounds must be at least 1, --seconds more than 0 and --warmup not negative")
        client, note = self._client(options["client"])
        if note:
            self.stderr.write(f"NOTE: {note}")
        target = self._prepare([options["tenant"]], options["agents"])[0]
        available = self._available_agents(target.slug)
        if available < max(connection_counts):
            self.stderr.write(
                f"NOTE: {target.slug} has {available} AVAILABLE agents, fewer than {max(connection_counts)} "
                "connections: some calls will queue (202) instead of being assigned."
            )
        parameters = {
            "floor_url": floor_url,
            "product_url": product_url,
            "connections": connection_counts,
            "rounds": options["rounds"],
            "seconds": options["seconds"],
            "warmup_seconds": options["warmup"],
            "tenant": target.slug,
            "agents": options["agents"],
            "available_agents": available,
        }
        self.stdout.write(
            f"Closed loop, {client}: floor {floor_url} and product {product_url} alternating, "
            f"{options['rounds']} rounds of {options['seconds']:g} s at {', '.join(map(str, connection_counts))} "
            f"connections; product tenant {target.slug}"
        )
        started_at = datetime.datetime.now(datetime.UTC)
        load_before = os.getloadavg()
        runs: list[loadgen.RunResult] = []
        warmup: list[loadgen.RunResult] = []
        drain_errors: list[str] = []

        def drain() -> None:
            # A call queued (202) or answered after the client stopped is still open: end it through
            # the API, so that the next run starts with every agent free.
            drained = Results()
            complete_open_calls(product_url, [target], drained)
            drain_errors.extend(drained.errors)

        if options["warmup"] > 0:
            for side, url in (("floor", floor_url), ("product", product_url)):
                run = self._one_run(client, side, url, target.api_key, max(connection_counts), 0, options["warmup"])
                warmup.append(run)
                self._print_run(run, label="warm-up")
            drain()
        for connections in connection_counts:
            for round_number in range(1, options["rounds"] + 1):
                for side, url in (("floor", floor_url), ("product", product_url)):
                    run = self._one_run(
                        client, side, url, target.api_key, connections, round_number, options["seconds"]
                    )
                    if side == "product":
                        drain()
                    runs.append(run)
                    self._print_run(run)
                    time.sleep(PAUSE_BETWEEN_RUNS_SECONDS)
        invariants = self._invariants([target])
        summary = loadgen.compare_summary(runs)
        errors = sum(run.errors + run.cleanup_errors for run in runs + warmup) + len(drain_errors)
        report: dict[str, Any] = {
            "mode": "compare",
            "client": client,
            "client_note": note,
            "parameters": parameters,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before]},
            "warmup": [run.as_dict() for run in warmup],
            "runs": [run.as_dict() for run in runs],
            "summary": summary,
            "errors": errors,
            "drain_errors": drain_errors[:10],
            "invariants": invariants,
        }
        report["targets"] = loadgen.compare_targets(summary, errors=errors, invariants_ok=invariants["ok"])
        self._print_compare(report)
        return report

    def _client(self, choice: str) -> tuple[str, str]:
        if choice == "python":
            return "python", ""
        if loadgen.wrk_path():
            return "wrk", ""
        if choice == "wrk":
            raise CommandError("wrk is not installed (Debian/Ubuntu: apt-get install wrk); or use --client python")
        return "python", loadgen.PYTHON_CLIENT_NOTE

    def _one_run(
        self, client: str, side: str, url: str, key: str, connections: int, round_number: int, seconds: float
    ) -> loadgen.RunResult:
        try:
            if client == "wrk":
                raw = loadgen.run_wrk(url, connections=connections, seconds=seconds, key=key)
            else:
                raw = loadgen.run_python(url, connections=connections, seconds=seconds, key=key)
        except loadgen.LoadError as exc:
            raise CommandError(str(exc)) from exc
        run = loadgen.run_result(raw, side=side, round=round_number, connections=connections, client=client)
        failures = loadgen.complete_calls(url, key, run.left_open)
        run.cleanup_errors = len(failures)
        run.error_samples += failures[:5]
        return run

    def _print_run(self, run: loadgen.RunResult, label: str = "") -> None:
        latency = run.latency_ms
        extra = ""
        if run.left_open or run.lost_in_flight:
            extra = f", {len(run.left_open)} calls completed after the run, {run.lost_in_flight} creates unanswered"
        self.stdout.write(
            f"  c={run.connections:<3} {label or f'round {run.round}'} {run.side:<7} "
            f"{run.calls_per_second:8.1f} calls/s  "
            f"p50 {latency['p50']:7.2f} ms  p99 {latency['p99']:7.2f} ms  "
            f"errors {run.errors + run.cleanup_errors}{extra}"
        )
        for sample in run.error_samples[:3]:
            self.stdout.write(f"      {sample}")
        sys.stdout.flush()

    def _print_compare(self, report: dict[str, Any]) -> None:
        w = self.stdout.write
        w("connections  floor calls/s (mean)  product calls/s (mean)  ratio  p99 floor / product   p99 ratio")
        for row in report["summary"]:
            floor, product = row["floor"], row["product"]
            w(
                f"{row['connections']:>11}  {loadgen._number(floor['mean_calls_per_second']):>20}  "
                f"{loadgen._number(product['mean_calls_per_second']):>22}  {loadgen._number(row['ratio'], 2):>5}  "
                f"{loadgen._number(floor['mean_p99_ms'], 2):>8} / {loadgen._number(product['mean_p99_ms'], 2):<8} ms  "
                f"{loadgen._number(row['p99_ratio'], 2):>9}"
            )
        self._print_targets(report["targets"])
        invariants = report["invariants"]
        w(f"errors: {report['errors']}  invariants: {'OK' if invariants['ok'] else 'BROKEN ' + json.dumps(invariants)}")
        if report["client_note"]:
            w(f"NOTE: {report['client_note']}")
        sys.stdout.flush()

    def _print_targets(self, targets: list[dict[str, Any]]) -> None:
        for target in targets:
            value = target["value"]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            self.stdout.write(f"{'PASS' if target['met'] else 'FAIL'}  {target['target']}: {shown}")

    # Shared -------------------------------------------------------------------------------------------

    def _prepare(self, slugs: list[str], agents: int) -> list[TenantTarget]:
        """Each tenant (created if missing) with an API key, at least ``agents`` agents and no wrap-up."""
        KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
        keys: dict[str, str] = json.loads(KEYS_FILE.read_text()) if KEYS_FILE.exists() else {}
        targets = []
        for slug in slugs:
            tenant = tenant_get(slug=slug)
            if tenant is None:
                self.stdout.write(f"creating tenant {slug}")
                number = slug.removeprefix("bench")
                created = tenant_create(name=f"Bench {number}" if number.isdigit() else slug, slug=slug)
                tenant, keys[slug] = created.tenant, created.issued_key.raw_key
            elif slug not in keys:
                keys[slug] = apikey_create(
                    tenant=tenant, name="bench", scope="write", actor=Actor.system("bench")
                ).raw_key
            with schema_context(tenant.schema_name):
                if routing_config(force=True).settings.wrap_up_seconds:
                    self.stdout.write(f"{slug}: wrap-up set to 0 s")
                    routing_settings_update(changes={"wrap_up_seconds": 0.0}, actor=Actor.system("bench"))
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

    def _available_agents(self, slug: str) -> int:
        tenant = tenant_get(slug=slug)
        assert tenant is not None
        with schema_context(tenant.schema_name):
            return Agent.objects.filter(status=Agent.Status.AVAILABLE, simulated=False).count()

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
        if report.get("targets"):
            self._print_targets(report["targets"])
        sys.stdout.flush()
