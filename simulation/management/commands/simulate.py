from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from assignment.models import DurationModel, Strategy
from callcenter.errors import ApplicationError
from simulation.runner import SimulationOptions, print_report, run_simulation
from simulation.staffing import print_staffing, staffing_plot, staffing_sweep
from simulation.stats import proportion_interval
from tenants.selectors import tenant_get
from tenants.services import tenant_create


class Command(BaseCommand):
    help = (
        "Simulate call traffic for a tenant through the same services as the API, then print the statistical "
        "report (latency, call-type mix, conversion, durations, invariants; Erlang C with exponential durations). "
        "Exits non-zero when a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--calls", type=int, help="calls per run (default 100; 2000 per agent count with --staffing)"
        )
        parser.add_argument("--agents", type=int, default=20, help="simulated agents (default %(default)s)")
        parser.add_argument("--quick", action="store_true", help="a fast smoke run: 60 calls, 10 agents")
        parser.add_argument(
            "--live",
            action="store_true",
            help="real time, calls completed by Celery workers (demos, load); default: a simulated clock",
        )
        parser.add_argument(
            "--stress",
            type=float,
            metavar="MINUTES",
            help="live: keep the arrival rate up for this long (real minutes)",
        )
        parser.add_argument("--rate", type=float, help="arrivals per simulated second (default: 85%% occupancy)")
        parser.add_argument(
            "--time-scale",
            type=float,
            default=200.0,
            help="live: simulated seconds per real second (default %(default)s)",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=42,
            help="random seed: the same seed and settings give the same report (default %(default)s)",
        )
        parser.add_argument(
            "--strategy", choices=Strategy.values, help="routing strategy for this run (default: the tenant's)"
        )
        parser.add_argument(
            "--duration-model", choices=DurationModel.values, help="call durations for this run (default: the tenant's)"
        )
        parser.add_argument("--no-wait-limit", action="store_true", help="no abandonment (implied by exponential)")
        parser.add_argument(
            "--tenant",
            default="sim",
            help="slug of the tenant to simulate on (default: %(default)s, a tenant for simulations); a tenant "
            "that does not exist is created, with the default configuration",
        )
        parser.add_argument(
            "--inline", action="store_true", help="live: complete calls in this process, not through Celery"
        )
        parser.add_argument(
            "--staffing",
            metavar="LOW:HIGH",
            help="run the simulated clock for each agent count from LOW to HIGH and find the smallest staff "
            "that meets the service-level target (beside Erlang C, and Erlang A with a wait limit)",
        )
        parser.add_argument("--plot", metavar="FILE.png", help="with --staffing: draw the staffing chart here")
        parser.add_argument(
            "--target",
            type=float,
            help="with --staffing: service-level target, the share answered within the tenant's "
            "service_level_seconds (default: the tenant's service_level_target, in its routing settings)",
        )
        parser.add_argument("--json", dest="json_file", help="write the full report here")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            self.stdout.write(f"No tenant {options['tenant']!r}: creating it for the simulation.")
            try:
                tenant = tenant_create(name=f"Simulation {options['tenant']}", slug=options["tenant"]).tenant
            except ApplicationError as error:
                raise CommandError(error.message) from error
        quick = options["quick"]
        live = options["live"] or bool(options["stress"]) or options["inline"]
        simulation = SimulationOptions(
            calls=60 if quick else (options["calls"] or (2000 if options["staffing"] else 100)),
            agents=10 if quick else options["agents"],
            rate=options["rate"],
            time_scale=2000.0 if quick and live else options["time_scale"],
            seed=options["seed"],
            strategy=options["strategy"],
            duration_model=options["duration_model"],
            stress_minutes=options["stress"],
            no_wait_limit=options["no_wait_limit"] or options["duration_model"] == DurationModel.EXPONENTIAL,
            inline_completion=True if options["inline"] else None,
            live=live,
        )
        try:
            with schema_context(tenant.schema_name):
                run = self._staffing if options["staffing"] else self._run
                report = run(simulation, options)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        if options["json_file"]:
            Path(options["json_file"]).write_text(json.dumps(report, indent=2, default=str))
            self.stdout.write(f"Report written to {options['json_file']}")
        if not report["ok"]:
            raise CommandError("some simulation checks failed")

    def _run(self, simulation: SimulationOptions, options: dict[str, Any]) -> dict[str, Any]:
        outcome = run_simulation(simulation, progress=self._progress)
        self.stdout.write("")
        report = outcome.report
        print_report(report, self.stdout.write)
        if options["strategy"] == Strategy.BEST_CONVERSION:
            self.stdout.write("Comparing with longest_idle on the same seed...")
            simulation.strategy = Strategy.LONGEST_IDLE
            baseline = run_simulation(simulation, progress=self._progress).report
            self.stdout.write("")
            report["lift"] = self._lift(report, baseline)
            self.stdout.write(f"Conversion lift of best_conversion over longest_idle: {report['lift']}")
        return report

    def _staffing(self, simulation: SimulationOptions, options: dict[str, Any]) -> dict[str, Any]:
        try:
            low, high = (int(part) for part in options["staffing"].split(":"))
        except ValueError:
            raise CommandError("--staffing takes LOW:HIGH, two agent counts, e.g. 10:30") from None
        if not 1 <= low <= high or high - low > 200:
            raise CommandError("--staffing needs 1 <= LOW <= HIGH and at most 200 counts")
        if options["target"] is not None and not 0 < options["target"] <= 1:
            raise CommandError("--target is a share between 0 and 1, e.g. 0.8")
        if simulation.live:
            raise CommandError("--staffing runs on the simulated clock; it does not take --live")
        result = staffing_sweep(
            options=simulation, agent_counts=range(low, high + 1), target=options["target"], progress=self._progress
        )
        self.stdout.write("")
        print_staffing(result, self.stdout.write)
        if options["plot"]:
            staffing_plot(result, Path(options["plot"]))
            self.stdout.write(f"Chart written to {options['plot']}")
        return {**result, "ok": True}

    def _progress(self, line: str) -> None:
        self.stdout.write("\r" + line, ending="")
        self.stdout.flush()

    @staticmethod
    def _lift(best: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
        def counts(report: dict[str, Any]) -> tuple[int, int]:
            cells = report["checks"]["conversion"]["cells"].values()
            return sum(c["ok_calls"] for c in cells), sum(c["calls"] for c in cells)

        best_ok, best_n = counts(best)
        base_ok, base_n = counts(baseline)
        best_rate, base_rate = best_ok / max(best_n, 1), base_ok / max(base_n, 1)
        return {
            "best_conversion": round(best_rate, 4),
            "best_conversion_interval": [round(x, 4) for x in proportion_interval(best_ok, best_n)],
            "longest_idle": round(base_rate, 4),
            "longest_idle_interval": [round(x, 4) for x in proportion_interval(base_ok, base_n)],
            "absolute_lift": round(best_rate - base_rate, 4),
            "relative_lift": round((best_rate - base_rate) / base_rate, 4) if base_rate else None,
        }
