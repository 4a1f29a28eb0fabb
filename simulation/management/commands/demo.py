from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from django.utils import timezone
from django_tenants.utils import schema_context

from calls.models import Call
from calls.services import call_create
from routing.services import routing_config
from simulation.models import SimulationRun
from simulation.runner import ensure_agents, ensure_agents_available, truncated_mean
from simulation.services import SIMULATOR
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = "Steady live traffic on the demo tenant until stopped (Ctrl-C), for watching the dashboard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo", help="slug of the tenant to drive (default: demo)")
        parser.add_argument("--agents", type=int, default=12, help="simulated agents (default %(default)s)")
        parser.add_argument(
            "--occupancy", type=float, default=0.85, help="target share of agents busy (default %(default)s)"
        )
        parser.add_argument(
            "--time-scale", type=float, default=10.0, help="simulated seconds per real second (default %(default)s)"
        )
        parser.add_argument(
            "--seed", type=int, default=7, help="random seed for arrivals and call types (default %(default)s)"
        )
        parser.add_argument(
            "--wait-for-tenant",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="wait this long for the tenant to exist (default %(default)s)",
        )
        parser.add_argument("--calls", type=int, default=0, help="stop after this many calls (default: never)")
        parser.add_argument(
            "--progress-every",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="print progress this often (default %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = {"now": False}

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        deadline = time.monotonic() + options["wait_for_tenant"]
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None and options["wait_for_tenant"] > 0:
            self.stdout.write(
                f"Waiting up to {options['wait_for_tenant']:g} s for tenant {options['tenant']!r} "
                "(`make run` creates demo)..."
            )
        while tenant is None and time.monotonic() < deadline and not stop["now"]:
            time.sleep(1)
            tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}; run `manage.py demo_setup` first.")
        with schema_context(tenant.schema_name):
            agents = ensure_agents(options["agents"])
            ensure_agents_available(agents)
            settings = routing_config(force=True).settings
            rate = options["occupancy"] * len(agents) / truncated_mean(settings)  # per simulated second
            run = SimulationRun.objects.create(
                seed=options["seed"],
                strategy=settings.strategy,
                rate_per_second=rate,
                time_scale=options["time_scale"],
                agents=len(agents),
                source="demo",
            )
            self.stdout.write(
                f"Demo traffic on {tenant.slug}: {len(agents)} agents, {rate * options['time_scale'] * 60:.1f} calls "
                f"per real minute, time scale {options['time_scale']}. Ctrl-C to stop."
            )
            rng = np.random.default_rng(options["seed"])
            call_types = sorted(routing_config().call_types_by_slug.values(), key=lambda c: c.slug)
            sequence = 0
            by_status: dict[str, int] = {}
            next_arrival = last_progress = time.monotonic()
            while not stop["now"] and not (options["calls"] and sequence >= options["calls"]):
                weights = np.array([c.mix_weight for c in call_types], dtype=float)
                call_type = call_types[int(rng.choice(len(call_types), p=weights / weights.sum()))]
                try:
                    created = call_create(
                        phone_number=f"+3469{sequence % 10**8:08d}",
                        call_type=call_type,
                        priority=int(rng.integers(0, 3)),
                        actor=SIMULATOR,
                        simulation_run=run,
                        simulation_sequence=sequence,
                    )
                    by_status[created.call.status] = by_status.get(created.call.status, 0) + 1
                except Exception as exc:  # keep the demo alive through a passing outage
                    self.stderr.write(f"call not created: {exc}")
                    time.sleep(1)
                sequence += 1
                if time.monotonic() - last_progress >= options["progress_every"]:
                    last_progress = time.monotonic()
                    counts = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
                    total = f"/{options['calls']}" if options["calls"] else ""
                    self.stdout.write(f"demo: {sequence}{total} calls sent ({counts or 'none answered'})")
                next_arrival += float(rng.exponential(1.0 / rate)) / options["time_scale"]
                while not stop["now"] and time.monotonic() < next_arrival and sequence != options["calls"]:
                    time.sleep(min(0.2, max(0.0, next_arrival - time.monotonic())))
                close_old_connections()
            run.status = SimulationRun.Status.STOPPED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at", "updated_at"])
            waiting = Call.objects.filter(simulation_run=run, status=Call.Status.QUEUED).count()
            self.stdout.write(
                f"Demo stopped after {sequence} calls ({waiting} still waiting: the sweep of a running worker ends "
                "them, now or when the worker next starts)."
            )
